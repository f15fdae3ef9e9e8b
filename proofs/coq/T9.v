(** T9: a DMA fault changes only its own IOSpace's fault state; NextFault reads only its own. *)
From Iso Require Export T8.

(** T9 (fault): a faulting DMA of [rid] changes nothing but the fault queue of the
    domain [rid] is assigned to: every other domain's queue and all other state stay. *)
Theorem T9_fault s rid i j :
  let s' := record_fault s rid i j in
  (∀ d, (∀ R, ctx s !! rid <> Some (R, d)) -> faults s' d = faults s d) /\
  s' = set_faults s (faults s').
Proof.
  simpl. unfold record_fault. destruct (ctx s !! rid) as [[R d]|] eqn:E; split; auto.
  - intros d' Hd. simpl. rewrite upd_ne; auto. intros ->. eapply Hd; eauto.
  - destruct s; reflexivity.
Qed.

(** T9 (NextFault): the invocation pops a record of the caller's own domain only. *)
Theorem T9_next_fault s io R d :
  caps s !! io = Some (CIoSpace R d) ->
  (∀ d', d' <> d -> faults (step s (NextFault io)) d' = faults s d') /\
  faults (step s (NextFault io)) d = tail (faults s d).
Proof.
  intros Hio. simpl. unfold next_fault. rewrite Hio. simpl. split.
  - intros d' Hne. rewrite upd_ne; auto.
  - apply upd_eq.
Qed.

(** T9 (hardware): of all hardware steps, only a faulting DMA changes fault state, and
    it changes only the queue of the faulting device's own domain. *)
Theorem T9 s s' : hw s s' ->
  ∀ d, faults s' d <> faults s d -> ∃ rid i j R, s' = record_fault s rid i j /\ ctx s !! rid = Some (R, d).
Proof.
  intros Hh d Hd. destruct Hh as [| | | |s|s rid i j w Hn|s]; simpl in Hd; try congruence.
  destruct (ctx s !! rid) as [[R d']|] eqn:E.
  - exists rid, i, j, R. split; auto. destruct (decide (d = d')) as [->|Hne]; auto.
    exfalso. apply Hd. unfold record_fault. rewrite E. simpl. rewrite upd_ne; auto.
  - exfalso. apply Hd. unfold record_fault. rewrite E. auto.
Qed.
