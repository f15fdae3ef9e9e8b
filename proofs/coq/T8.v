(** T8: a requester id is in at most one IOSpace; Unassign and destruction remove it. *)
From Iso Require Export T7.

(** T8 (one IOSpace): every context a device's DMA can use, current or cached, is the
    same one. *)
Theorem T8_unique s0 s rid e1 e2 :
  inv s0 -> reachable s0 s -> ctx_view s rid e1 -> ctx_view s rid e2 -> e1 = e2.
Proof.
  intros H0 Hr H1 H2. pose proof (T1_invariant _ _ H0 Hr) as Hi.
  apply ctx_view_current in H1; auto. apply ctx_view_current in H2; auto. congruence.
Qed.

(** T8 (Unassign): once Unassign returns, the device has no context entry and no
    cached one. *)
Theorem T8_unassign s0 s io pci R d rid :
  inv s0 -> reachable s0 s ->
  caps s !! io = Some (CIoSpace R d) -> caps s !! pci = Some (CPciDevice rid) ->
  (∃ d', ctx s !! rid = Some (R, d')) ->
  ∀ e, ~ ctx_view (step s (Unassign io pci)) rid e.
Proof.
  intros H0 Hr Hio Hp [d' Hc] e. simpl. unfold unassign. rewrite Hio, Hp, Hc.
  destruct (Nat.eq_dec R R); [|congruence]. intros [H|H]; simpl in H.
  - rewrite lookup_delete in H. discriminate.
  - apply in_filter in H as [H _]. simpl in H. auto.
Qed.

(** T8 (destruction): once the last IOSpace cap is deleted, no device has a context
    entry, current or cached, for that IOSpace. *)
Theorem T8_destroy s0 s x R d :
  inv s0 -> reachable s0 s -> caps s !! x = Some (CIoSpace R d) ->
  (∀ y d', y <> x -> caps s !! y <> Some (CIoSpace R d')) ->
  ∀ rid d', ~ ctx_view (step s (Delete x)) rid (R, d').
Proof.
  intros H0 Hr Hx Hlast rid d'. simpl. unfold delete_slot. rewrite Hx.
  unfold other_ios. case_bool_decide as Ho.
  - exfalso. destruct Ho as (y & c & Hy & Hyx & Hc). destruct c; simpl in Hc; try discriminate.
    apply Nat.eqb_eq in Hc as <-. eapply Hlast; eauto.
  - intros [H|H]; simpl in H.
    + apply map_filter_lookup_Some in H as [_ H]. simpl in H. auto.
    + apply in_filter in H as [H _]. simpl in H. auto.
Qed.
