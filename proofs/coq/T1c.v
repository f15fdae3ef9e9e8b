(** T1c: the invariant is kept by Delete (and so by each unit of Revoke). *)
From Iso Require Export T1b.

Lemma reparent_ne par x y q :
  par !! x <> Some x -> reparent par x !! y = Some q -> q <> x.
Proof.
  unfold reparent. rewrite lookup_omap. intros Hx.
  destruct (decide (y = x)) as [->|Hyx]; [rewrite lookup_delete; discriminate|].
  rewrite lookup_delete_ne by congruence. destruct (par !! y) as [p|]; simpl; [|discriminate].
  destruct (Nat.eq_dec p x); [intros E ->; congruence|congruence].
Qed.

Lemma mem_remove m p lo hi x :
  mem_inv m p lo hi -> mem_inv (delete x m) (reparent p x) lo hi.
Proof.
  intros Hm. dmem Hm.
  assert (Hloop : ∀ y, p !! y <> Some y) by (intros y Hy; destruct (Htree _ _ Hy) as (_ & _ & ?); auto).
  constructor.
  - intros y q Hy. pose proof (reparent_ne _ _ _ _ (Hloop x) Hy) as Hqx.
    apply reparent_lookup in Hy as [Hyx [Hy|[Hy1 Hy2]]].
    + destruct (Htree _ _ Hy) as (H1 & H2 & H3). rewrite !lookup_delete_ne by congruence. auto.
    + destruct (Htree _ _ Hy1) as (H1 & _ & _). destruct (Htree _ _ Hy2) as (_ & H2 & _).
      rewrite !lookup_delete_ne by congruence. split; [|split]; auto.
      intros ->. eapply (Hacyc q). eapply d_step; [apply d_base; eauto|]. auto.
  - intros y Hd. eapply Hacyc. eapply desc_reparent_old; eauto.
  - intros u1 u2 c1 c2 pa H1 H2. apply lookup_delete_Some in H1 as [_ H1].
    apply lookup_delete_Some in H2 as [_ H2]. eauto.
  - intros u c pa H. apply lookup_delete_Some in H as [_ H]. eauto.
  - intros y c pa H. apply lookup_delete_Some in H as [_ H]. eauto.
  - intros y c pa u b sz dev wm H Hc Hu Hb.
    apply lookup_delete_Some in H as [Hyx H]. apply lookup_delete_Some in Hu as [Hux Hu].
    destruct (Hut _ _ _ _ _ _ _ _ H Hc Hu Hb) as [Hd Hw]. split; auto.
    apply (desc_reparent p x u Hloop); auto.
  - intros x1 x2 c1 c2 k1 k2 pa H1 H2. apply lookup_delete_Some in H1 as [_ H1].
    apply lookup_delete_Some in H2 as [_ H2]. eauto.
  - intros y pa r dev mp u b sz dev' wm H1 H2. apply lookup_delete_Some in H1 as [_ H1].
    apply lookup_delete_Some in H2 as [_ H2]. eauto.
Qed.

Definition removable (s : state) (x : slot) (c : cap) : Prop :=
  (∀ pa r dev m, c = CFrame pa r dev m -> m = None) /\
  (∀ T m, c = CIoPageTable T m -> m = None) /\
  (∀ R d, c = CIoSpace R d -> ∃ y, y <> x /\ caps s !! y = Some (CIoSpace R d)) /\
  (∀ v rid, c = CMsi v rid -> ∃ y, y <> x /\ caps s !! y = Some (CMsi v rid)).

Lemma del_other (m : gmap nat cap) x c y c0 :
  m !! x = Some c -> m !! y = Some c0 -> c0 <> c -> delete x m !! y = Some c0.
Proof. intros Hx Hy Hne. rewrite lookup_delete_ne; auto. intros ->. congruence. Qed.

Lemma remove_ok s x c : inv s -> caps s !! x = Some c -> removable s x c ->
  inv (remove_slot s x).
Proof.
  intros Hi Hx (Hfr & Hpt & Hio & Hms). dinv Hi. constructor; simpl.
  - apply mem_remove; auto.
  - intros y R d H. apply lookup_delete_Some in H as [_ H]. eauto.
  - intros R d H. destruct (Hdoms _ _ H) as [y Hy]. destruct (decide (y = x)) as [->|Hne].
    + rewrite Hx in Hy. injection Hy as ->. destruct (Hio _ _ eq_refl) as (y & Hyx & Hy).
      exists y. rewrite lookup_delete_ne; auto.
    + exists y. rewrite lookup_delete_ne; auto.
  - auto.
  - auto.
  - auto.
  - auto.
  - intros R d i j pa r HR Hw. destruct (Hjust _ _ _ _ _ _ HR Hw) as (y & r0 & Hy & Hr).
    exists y, r0. split; auto. eapply del_other; eauto. intros E; subst c. discriminate (Hfr _ _ _ _ eq_refl).
  - intros R i T H. destruct (Hroot _ _ _ H) as [y Hy]. exists y. eapply del_other; eauto.
    intros E; subst c. discriminate (Hpt _ _ eq_refl).
  - intros T j v H. destruct (Hempty _ _ _ H) as (y & mm & Hy). exists y, mm.
    eapply del_other; eauto. intros E; subst c. discriminate (Hpt _ _ eq_refl).
  - intros x1 x2 T m1 m2 H1 H2. apply lookup_delete_Some in H1 as [_ H1].
    apply lookup_delete_Some in H2 as [_ H2]. eauto.
  - intros v e H. destruct (Hirte _ _ H) as (rid & y & -> & Hy). exists rid.
    destruct (decide (y = x)) as [->|Hne].
    + rewrite Hx in Hy. injection Hy as ->. destruct (Hms _ _ eq_refl) as (y & Hyx & Hy).
      exists y. rewrite lookup_delete_ne; auto.
    + exists y. rewrite lookup_delete_ne; auto.
  - intros y v rid H. apply lookup_delete_Some in H as [_ H]. eauto.
  - auto.
Qed.

Lemma destroy_ok s x R d : inv s -> caps s !! x = Some (CIoSpace R d) ->
  (∀ y d', y <> x -> caps s !! y <> Some (CIoSpace R d')) ->
  inv (destroy_iospace (remove_slot s x) R d).
Proof.
  intros Hi Hx Hlast. pose proof (i_ios _ Hi _ _ _ Hx) as HR. dinv Hi.
  constructor; simpl.
  - apply mem_remove; auto.
  - intros y R' d' H. apply lookup_delete_Some in H as [Hyx H].
    rewrite lookup_delete_ne; eauto. intros ->. eapply Hlast; eauto.
  - intros R' d' H. apply lookup_delete_Some in H as [HRR H].
    destruct (Hdoms _ _ H) as [y Hy]. exists y. rewrite lookup_delete_ne; auto.
    intros ->. congruence.
  - intros R1 R2 e H1 H2. apply lookup_delete_Some in H1 as [_ H1].
    apply lookup_delete_Some in H2 as [_ H2]. eauto.
  - intros rid R' d' H. apply map_filter_lookup_Some in H as [H HR']. simpl in HR'.
    rewrite lookup_delete_ne; eauto.
  - intros rid e He. apply in_filter in He as [Hne He]. simpl in Hne.
    apply map_filter_lookup_Some. split; eauto.
  - intros e He. apply in_filter in He as [Hne He].
    destruct (Htlb e He) as (R' & H1 & H2). exists R'. split; auto.
    rewrite lookup_delete_ne; auto. intros ->. congruence.
  - intros R' d' i j pa r HR' Hw. apply lookup_delete_Some in HR' as [HRR HR'].
    destruct (Hjust _ _ _ _ _ _ HR' Hw) as (y & r0 & Hy & Hr).
    exists y, r0. split; auto. eapply del_other; eauto; discriminate.
  - intros R' i T H. destruct (Hroot _ _ _ H) as [y Hy]. exists y. eapply del_other; eauto; discriminate.
  - intros T j v H. destruct (Hempty _ _ _ H) as (y & mm & Hy). exists y, mm.
    eapply del_other; eauto; discriminate.
  - intros x1 x2 T m1 m2 H1 H2. apply lookup_delete_Some in H1 as [_ H1].
    apply lookup_delete_Some in H2 as [_ H2]. eauto.
  - intros v e H. destruct (Hirte _ _ H) as (rid & y & -> & Hy). exists rid, y.
    split; auto. eapply del_other; eauto; discriminate.
  - intros y v rid H. apply lookup_delete_Some in H as [_ H]. eauto.
  - auto.
Qed.

Lemma release_ok s x v rid : inv s -> caps s !! x = Some (CMsi v rid) ->
  (∀ y rid', y <> x -> caps s !! y <> Some (CMsi v rid')) ->
  inv (release_msi (remove_slot s x) v).
Proof.
  intros Hi Hx Hlast. dinv Hi. constructor; simpl.
  - apply mem_remove; auto.
  - intros y R d H. apply lookup_delete_Some in H as [_ H]. eauto.
  - intros R d H. destruct (Hdoms _ _ H) as [y Hy]. exists y. eapply del_other; eauto; discriminate.
  - auto.
  - auto.
  - auto.
  - auto.
  - intros R d i j pa r HR Hw. destruct (Hjust _ _ _ _ _ _ HR Hw) as (y & r0 & Hy & Hr).
    exists y, r0. split; auto. eapply del_other; eauto; discriminate.
  - intros R i T H. destruct (Hroot _ _ _ H) as [y Hy]. exists y. eapply del_other; eauto; discriminate.
  - intros T j w H. destruct (Hempty _ _ _ H) as (y & mm & Hy). exists y, mm.
    eapply del_other; eauto; discriminate.
  - intros x1 x2 T m1 m2 H1 H2. apply lookup_delete_Some in H1 as [_ H1].
    apply lookup_delete_Some in H2 as [_ H2]. eauto.
  - intros w e H. apply lookup_delete_Some in H as [Hwv H].
    destruct (Hirte _ _ H) as (rid' & y & -> & Hy). exists rid', y.
    split; auto. eapply del_other; eauto. congruence.
  - intros y w rid' H. apply lookup_delete_Some in H as [Hyx H].
    rewrite lookup_delete_ne; eauto. intros ->. eapply Hlast; eauto.
  - intros w e He. apply in_filter in He as [Hne He]. simpl in Hne.
    rewrite lookup_delete_ne; eauto.
Qed.

Lemma unmap_frame_cap s x pa r dev R i j :
  caps s !! x = Some (CFrame pa r dev (Some (R, i, j))) ->
  caps (unmap_frame s x) !! x = Some (CFrame pa r dev None).
Proof. intros Hx. unfold unmap_frame. rewrite Hx. repeat case_match; simpl; apply lookup_insert. Qed.

Lemma unmap_table_cap s x T R i :
  caps s !! x = Some (CIoPageTable T (Some (R, i))) ->
  caps (unmap_table s x) !! x = Some (CIoPageTable T None).
Proof. intros Hx. unfold unmap_table. rewrite Hx. repeat case_match; simpl; apply lookup_insert. Qed.

Lemma T1_delete s x : inv s -> inv (delete_slot s x).
Proof.
  intros Hi. unfold delete_slot.
  destruct (caps s !! x) as [c|] eqn:Hx; auto.
  assert (Hrm : ∀ s1 c1, inv s1 -> caps s1 !! x = Some c1 ->
                (∀ R d, c1 <> CIoSpace R d) -> (∀ v rid, c1 <> CMsi v rid) ->
                (∀ pa r dev m, c1 = CFrame pa r dev m -> m = None) ->
                (∀ T m, c1 = CIoPageTable T m -> m = None) -> inv (remove_slot s1 x)).
  { intros s1 c1 Hi1 Hx1 H1 H2 H3 H4. eapply remove_ok; eauto.
    unfold removable. split; [exact H3|split; [exact H4|split]].
    - intros R d E. exfalso. eapply H1; eauto.
    - intros v rid E. exfalso. eapply H2; eauto. }
  destruct c as [| | | | | |pa r dev [[[R i] j]|]|R d|T [[R i]|]| | |v rid].
  all: try (eapply Hrm; eauto; intros; congruence).
  - eapply Hrm. apply T1_unmap_frame; auto. eapply unmap_frame_cap; eauto.
    all: intros; congruence.
  - unfold other_ios. case_bool_decide as Ho.
    + eapply remove_ok; eauto. unfold removable. repeat split; intros; try discriminate.
      match goal with H : CIoSpace _ _ = CIoSpace _ _ |- _ => injection H as <- <- end.
      destruct Ho as (y & c' & Hy & Hyx & Hc'). destruct c'; simpl in Hc'; try discriminate.
      apply Nat.eqb_eq in Hc' as <-. exists y. split; auto.
      pose proof (i_ios _ Hi _ _ _ Hx). pose proof (i_ios _ Hi _ _ _ Hy). congruence.
    + apply destroy_ok; auto. intros y d' Hyx Hy. apply Ho. exists y, (CIoSpace R d').
      simpl. rewrite Nat.eqb_refl. auto.
  - eapply Hrm. apply T1_unmap_table; auto. eapply unmap_table_cap; eauto.
    all: intros; congruence.
  - unfold other_msi. case_bool_decide as Ho.
    + eapply remove_ok; eauto. unfold removable. repeat split; intros; try discriminate.
      match goal with H : CMsi _ _ = CMsi _ _ |- _ => injection H as <- <- end.
      destruct Ho as (y & c' & Hy & Hyx & Hc'). destruct c'; simpl in Hc'; try discriminate.
      apply Nat.eqb_eq in Hc' as <-. exists y. split; auto.
      pose proof (i_msi _ Hi _ _ _ Hx). pose proof (i_msi _ Hi _ _ _ Hy). congruence.
    + eapply release_ok; eauto. intros y rid' Hyx Hy. apply Ho. exists y, (CMsi v rid').
      simpl. rewrite Nat.eqb_refl. auto.
Qed.
