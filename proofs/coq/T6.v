(** T6: a page two IOSpaces reach is mapped in each by a distinct Frame cap. *)
From Iso Require Export T5.

(** T6: if devices assigned to two different IOSpaces both reach [pa], each IOSpace
    holds its own mapping of [pa], made through two different Frame caps (a frame
    shared between domains was deliberately given to both). *)
Theorem T6 s0 s rid1 rid2 i1 j1 i2 j2 w1 w2 pa R1 d1 R2 d2 :
  inv s0 -> reachable s0 s ->
  dma_ok s rid1 i1 j1 w1 pa -> dma_ok s rid2 i2 j2 w2 pa ->
  ctx s !! rid1 = Some (R1, d1) -> ctx s !! rid2 = Some (R2, d2) -> R1 <> R2 ->
  ∃ x1 x2 r1 r2, x1 <> x2 /\
    caps s !! x1 = Some (CFrame pa r1 false (Some (R1, i1, j1))) /\
    caps s !! x2 = Some (CFrame pa r2 false (Some (R2, i2, j2))).
Proof.
  intros H0 Hr Hd1 Hd2 Hc1 Hc2 Hne. pose proof (T1_invariant _ _ H0 Hr) as Hi.
  destruct (T2_dma_authorised _ _ _ _ _ _ Hi Hd1) as (R1' & d1' & x1 & r1 & Hc1' & Hx1 & _).
  destruct (T2_dma_authorised _ _ _ _ _ _ Hi Hd2) as (R2' & d2' & x2 & r2 & Hc2' & Hx2 & _).
  rewrite Hc1 in Hc1'. rewrite Hc2 in Hc2'. injection Hc1' as <- <-. injection Hc2' as <- <-.
  exists x1, x2, r1, r2. repeat split; auto. intros ->. congruence.
Qed.
