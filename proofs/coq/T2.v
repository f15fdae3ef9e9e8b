(** T2: whatever a device can reach (walk or any cached entry) is a mapped frame cap. *)
From Iso Require Export T1.

Lemma rsub_trans a b c : rsub a b = true -> rsub b c = true -> rsub a c = true.
Proof.
  destruct a as [[] []], b as [[] []], c as [[] []]; unfold rsub; simpl; congruence.
Qed.

Lemma ctx_view_current s rid e : inv s -> ctx_view s rid e -> ctx s !! rid = Some e.
Proof. intros Hi [H|H]; auto. eapply i_ctxc; eauto. Qed.

(** T2 (one state): a DMA by [rid] at IOVA (i, j) with rights [w] that reaches [pa] —
    by a walk, through a cached context entry, or through an IOTLB entry of any age —
    goes through the IOSpace [rid] is assigned to, in which a live RAM Frame cap to
    [pa] is mapped at (i, j) with at least the rights [w]. *)
Theorem T2_dma_authorised s rid i j w pa :
  inv s -> dma_ok s rid i j w pa ->
  ∃ R d x r0, ctx s !! rid = Some (R, d) /\
    caps s !! x = Some (CFrame pa r0 false (Some (R, i, j))) /\ rsub w r0 = true.
Proof.
  intros Hi (R & d & Hv & Hacc). apply ctx_view_current in Hv; auto.
  pose proof (i_ctx _ Hi _ _ _ Hv) as HR.
  destruct Hacc as [(r & Ht & Hw)|(r & Hwk & Hw)].
  - destruct (i_tlb _ Hi _ Ht) as (R' & HR' & Hwk). simpl in *.
    pose proof (i_dom_uniq _ Hi _ _ _ HR HR') as <-.
    destruct (i_just _ Hi _ _ _ _ _ _ HR Hwk) as (x & r0 & Hx & Hr).
    exists R, d, x, r0. eauto using rsub_trans.
  - destruct (i_just _ Hi _ _ _ _ _ _ HR Hwk) as (x & r0 & Hx & Hr).
    exists R, d, x, r0. eauto using rsub_trans.
Qed.

(** T2 over every reachable state. *)
Theorem T2 s0 s rid i j w pa :
  inv s0 -> reachable s0 s -> dma_ok s rid i j w pa ->
  ∃ R d x r0, ctx s !! rid = Some (R, d) /\
    caps s !! x = Some (CFrame pa r0 false (Some (R, i, j))) /\ rsub w r0 = true.
Proof. intros H0 Hr. apply T2_dma_authorised. eapply T1_invariant; eauto. Qed.
