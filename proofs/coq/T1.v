(** T1: the invariant holds in every state reachable by system calls and hardware steps. *)
From Iso Require Export T1c.

Theorem T1_step s o : inv s -> inv (step s o).
Proof.
  intros Hi. destruct o; simpl.
  - apply T1_retype; auto.
  - apply T1_copy; auto.
  - apply T1_delete; auto.
  - destruct (_ && _); auto. apply T1_delete; auto.
  - apply T1_map_frame; auto.
  - repeat case_match; auto. apply T1_unmap_frame; auto.
  - apply T1_map_table; auto.
  - apply T1_unmap_table; auto.
  - apply T1_assign; auto.
  - apply T1_unassign; auto.
  - apply T1_get_msi; auto.
  - apply T1_next_fault; auto.
Qed.

(** T1: from any initial state satisfying the invariant, every state reached at a
    system-call return, a Revoke preemption point, or after any hardware fill, evict,
    DMA (translated or faulting) or MSI satisfies it. *)
Theorem T1_invariant s0 s : inv s0 -> reachable s0 s -> inv s.
Proof.
  intros H0 Hr. induction Hr; auto using T1_step. eapply T1_hw; eauto.
Qed.
