(** T4: no translation, IOTLB or context entry names memory no cap covers; Retype is fresh. *)
From Iso Require Export T3.

(** Everything the IOMMU can use in state [s] names memory some live cap covers. *)
Definition entries_covered (s : state) : Prop :=
  (∀ R d i j pa r, doms s !! R = Some d -> walk s R i j = Some (pa, r) ->
     ∃ x r0 m, caps s !! x = Some (CFrame pa r0 false (Some m))) /\
  (∀ e, In e (iotlb s) -> ∃ x r0 m, caps s !! x = Some (CFrame (t_pa e) r0 false (Some m))) /\
  (∀ rid R d, ctx s !! rid = Some (R, d) -> ∃ x, caps s !! x = Some (CIoSpace R d)) /\
  (∀ rid R d, In (rid, (R, d)) (ctxc s) -> ∃ x, caps s !! x = Some (CIoSpace R d)).

Lemma inv_entries_covered s : inv s -> entries_covered s.
Proof.
  intros Hi. split; [|split; [|split]].
  - intros R d i j pa r HR Hw. destruct (i_just _ Hi _ _ _ _ _ _ HR Hw) as (x & r0 & Hx & _). eauto.
  - intros e He. destruct (i_tlb _ Hi _ He) as (R & HR & Hw).
    destruct (i_just _ Hi _ _ _ _ _ _ HR Hw) as (x & r0 & Hx & _). eauto.
  - intros rid R d H. eapply i_doms; eauto. eapply i_ctx; eauto.
  - intros rid R d H. eapply i_doms; eauto. eapply i_ctx; eauto. eapply i_ctxc; eauto.
Qed.

(** T4: after Delete returns, and after each unit of Revoke, no IO page-table entry of a
    live IOSpace, IOTLB entry, context entry or cached context entry names memory that
    no remaining cap covers. *)
Theorem T4_delete s0 s x : inv s0 -> reachable s0 s -> entries_covered (step s (Delete x)).
Proof. intros H0 Hr. apply inv_entries_covered. eapply T1_invariant; [eauto|]. constructor; auto. Qed.

Theorem T4_revoke s0 s x v : inv s0 -> reachable s0 s -> entries_covered (step s (RevokeOne x v)).
Proof. intros H0 Hr. apply inv_entries_covered. eapply T1_invariant; [eauto|]. constructor; auto. Qed.

(** T4 (Retype): the memory Retype hands out next is named by no translation, IOTLB
    entry, context entry (cached or not), root entry or IO page-table entry. *)
Theorem T4_retype_fresh s0 s u b sz dev wm :
  inv s0 -> reachable s0 s -> caps s !! u = Some (CUntyped b sz dev wm) ->
  let pa := b + (if has_children s u then wm else 0) in
  (if has_children s u then wm else 0) < sz ->
  (∀ R d i j r, doms s !! R = Some d -> walk s R i j <> Some (pa, r)) /\
  (∀ e, In e (iotlb s) -> t_pa e <> pa) /\
  (∀ rid R d, ctx s !! rid = Some (R, d) -> R <> pa) /\
  (∀ rid R d, In (rid, (R, d)) (ctxc s) -> R <> pa) /\
  (∀ R i, rootent s R i <> Some pa) /\
  (∀ j, leafent s pa j = None).
Proof.
  intros H0 Hr Hu pa Hlt. pose proof (T1_invariant _ _ H0 Hr) as Hi.
  assert (Hfr : ∀ x c0, caps s !! x = Some c0 -> ~ covers c0 pa).
  { intros x c0 Hx. eapply retype_fresh; eauto. apply Hi. }
  destruct (inv_entries_covered _ Hi) as (Hw & Ht & Hc & Hcc).
  split; [|split; [|split; [|split; [|split]]]].
  - intros R d i j r HR E. destruct (Hw _ _ _ _ _ _ HR E) as (x & r0 & m & Hx).
    eapply Hfr; eauto. eexists; reflexivity.
  - intros e He E. destruct (Ht _ He) as (x & r0 & m & Hx). rewrite E in Hx.
    eapply Hfr; eauto. eexists; reflexivity.
  - intros rid R d H E. destruct (Hc _ _ _ H) as [x Hx]. subst R.
    eapply Hfr; eauto. eexists; reflexivity.
  - intros rid R d H E. destruct (Hcc _ _ _ H) as [x Hx]. subst R.
    eapply Hfr; eauto. eexists; reflexivity.
  - intros R i E. destruct (i_root _ Hi _ _ _ E) as [x Hx].
    eapply Hfr; eauto. eexists; reflexivity.
  - intros j. destruct (leafent s pa j) eqn:E; auto. exfalso.
    destruct (i_empty _ Hi _ _ _ E) as (x & m & Hx). eapply Hfr; eauto. eexists; reflexivity.
Qed.
