(** T3: DMA reaches only RAM frames: never kernel memory or another kind of object. *)
From Iso Require Export T2.

(** T3: memory a device can reach is outside the kernel region, every cap to it is a
    Frame cap (no CNode, TCB, endpoint, notification, page table, IOSpace or IO page
    table lies there), and every untyped it lies in is RAM, not device memory. *)
Theorem T3 s0 s rid i j w pa :
  inv s0 -> reachable s0 s -> dma_ok s rid i j w pa ->
  ~ in_kernel s pa /\
  (∀ x c k, caps s !! x = Some c -> obj_of c = Some (k, pa) -> k = KFrame) /\
  (∀ u b sz dev wm, caps s !! u = Some (CUntyped b sz dev wm) -> b <= pa < b + sz -> dev = false).
Proof.
  intros H0 Hr Hd. pose proof (T1_invariant _ _ H0 Hr) as Hi.
  destruct (T2_dma_authorised _ _ _ _ _ _ Hi Hd) as (R & d & x & r0 & _ & Hx & _).
  destruct (i_mem _ Hi) as [_ _ _ _ Hkern _ Hobj Hdev]. split; [|split].
  - eapply Hkern; eauto; eexists; reflexivity.
  - intros y c k Hy Hc. symmetry. eapply (Hobj x y); eauto; reflexivity.
  - intros u b sz dev wm Hu Hb. symmetry. eapply Hdev; eauto.
Qed.
