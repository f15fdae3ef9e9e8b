(** T1b: the invariant is kept by Copy / Mint and by Retype. *)
From Iso Require Export T1a.

Lemma derive_facts c r c' : derive c r = Some c' ->
  not_ut c' /\ obj_of c' = obj_of c /\ fdev c' = fdev c /\
  (∀ T m, c' <> CIoPageTable T m) /\ (∀ R d, c' = CIoSpace R d -> c = c') /\
  (∀ v rid, c' = CMsi v rid -> c = c') /\
  (∀ pa r0 dev m, c' = CFrame pa r0 dev m -> m = None).
Proof.
  destruct c; simpl; intros H; try discriminate; injection H as <-; simpl;
    repeat split; try discriminate; auto; congruence.
Qed.

Lemma T1_copy s src dst r : inv s -> inv (copy s src dst r).
Proof.
  intros Hi. unfold copy.
  destruct (caps s !! src) as [c|] eqn:Es; auto.
  destruct (caps s !! dst) eqn:Ed; auto.
  destruct (derive c r) as [c'|] eqn:Ec; auto.
  destruct (Nat.eq_dec src dst) as [|Hsd]; auto.
  destruct (derive_facts _ _ _ Ec) as (Hu & Ho & Hf & Hno & Hio & Hms & Hfr).
  dinv Hi. constructor; simpl.
  - eapply mem_insert; eauto.
  - intros x R' d' Hx. lk; eauto. rewrite (Hio _ _ eq_refl) in Es. eauto.
  - intros R' d' H. eapply ex_ins; eauto. congruence.
  - auto.
  - auto.
  - auto.
  - auto.
  - intros R' d' i' j' pa' r1 HR' Hw. eapply ex_frame_ins; eauto. congruence.
  - intros R' i' T' H2. eapply ex_ins; eauto. congruence.
  - intros T' j' v' Hl. eapply ex_iopt_ins; [congruence|eauto].
  - intros x1 x2 T' m1 m2 H1 H2. lk; eauto; exfalso; eapply Hno; eauto.
  - intros v' e He. destruct (Hirte _ _ He) as (rid' & x & -> & Hx). exists rid', x.
    split; auto. rewrite lookup_insert_ne; [auto|intros ->; congruence].
  - intros x v' rid' Hx. lk; eauto. rewrite (Hms _ _ eq_refl) in Es. eauto.
  - auto.
Qed.

Lemma new_cap_obj k pa dev d : obj_of (new_cap k pa dev d) = Some (k, pa).
Proof. destruct k; reflexivity. Qed.
Lemma new_cap_not_ut k pa dev d : not_ut (new_cap k pa dev d).
Proof. destruct k; simpl; auto. Qed.

(** The memory an untyped hands out next is named by no cap. *)
Lemma retype_fresh m p lo hi u b sz dev wm wm0 x c0 :
  mem_inv m p lo hi -> m !! u = Some (CUntyped b sz dev wm) ->
  wm0 = (if bool_decide (map_Exists (fun _ q => q = u) p) then wm else 0) -> wm0 < sz ->
  m !! x = Some c0 -> ~ covers c0 (b + wm0).
Proof.
  intros Hm Hu Hw0 Hlt Hx Hc. pose proof Hm as Hm0. dmem Hm.
  destruct (Hut x c0 (b + wm0) u b sz dev wm) as [Hd Hlt']; auto; [lia|].
  case_bool_decide as Hch; subst wm0; [lia|].
  eapply desc_no_children; [|exact Hd]. intros c Hc'. apply Hch. exists c, u. auto.
Qed.

Lemma mem_retype m p lo hi u b sz dev wm wm0 dst c k :
  mem_inv m p lo hi -> m !! u = Some (CUntyped b sz dev wm) -> m !! dst = None -> u <> dst ->
  (∀ x c0, m !! x = Some c0 -> ~ covers c0 (b + wm0)) -> wm0 < sz ->
  (wm0 = wm \/ ∀ x, ~ desc p u x) ->
  obj_of c = Some (k, b + wm0) -> not_ut c -> (fdev c = None \/ fdev c = Some dev) ->
  mem_inv (<[dst := c]> (<[u := CUntyped b sz dev (S wm0)]> m)) (<[dst := u]> p) lo hi.
Proof.
  intros Hm Hu Hd Hud Hfr Hlt Hwm Ho Hn Hf. pose proof Hm as Hm0. dmem Hm.
  assert (Hpd : p !! dst = None).
  { destruct (p !! dst) eqn:E; auto. destruct (Htree _ _ E) as ([? H] & _). congruence. }
  assert (Hin : in_ut (CUntyped b sz dev wm) (b + wm0)) by (simpl; lia).
  constructor.
  - intros x y Hx. destruct (decide (x = dst)) as [->|Hne].
    + rewrite lookup_insert in Hx. injection Hx as <-.
      rewrite lookup_insert, lookup_insert_ne, lookup_insert by congruence. eauto.
    + rewrite lookup_insert_ne in Hx by congruence. destruct (Htree _ _ Hx) as (H1 & H2 & H3).
      auto using is_Some_insert.
  - apply acyc_insert_leaf; auto. intros c' Hc'. destruct (Htree _ _ Hc') as (_ & [? H] & _).
    congruence.
  - intros u1 u2 c1 c2 pa H1 H2 Hi1 Hi2. lk; try (exfalso; eauto using not_ut_in; fail).
    all: eapply Hdisj; eauto.
  - intros u' c1 pa H1 Hi1. lk; try (exfalso; eauto using not_ut_in; fail).
    all: eapply Hutk; eauto.
  - intros x c1 pa H1 [k' Hc]. lk; simpl in Hc; try discriminate.
    + rewrite Ho in Hc. injection Hc as -> <-. eapply Hutk; eauto.
    + eapply Hkern; eauto. exists k'; auto.
  - intros x c1 pa u' b' sz' dev' wm' H1 [k' Hc] H2 Hb.
    destruct (decide (u' = dst)) as [->|Hne].
    { rewrite lookup_insert in H2. injection H2 as H2; subst; destruct Hn. }
    rewrite lookup_insert_ne in H2 by congruence.
    destruct (decide (x = dst)) as [->|Hxd].
    + rewrite lookup_insert in H1. injection H1 as <-. rewrite Ho in Hc. injection Hc as -> <-.
      destruct (decide (u' = u)) as [->|Hne'].
      * rewrite lookup_insert in H2. injection H2 as <- <- <- <-. split; [|lia].
        apply d_base. apply lookup_insert.
      * rewrite lookup_insert_ne in H2 by congruence. exfalso.
        apply Hne'. eapply (Hdisj u' u); eauto; simpl; lia.
    + rewrite lookup_insert_ne in H1 by congruence.
      destruct (decide (x = u)) as [->|Hxu].
      { rewrite lookup_insert in H1. injection H1 as <-. simpl in Hc. discriminate. }
      rewrite lookup_insert_ne in H1 by congruence.
      destruct (decide (u' = u)) as [->|Hne'].
      * rewrite lookup_insert in H2. injection H2 as <- <- <- <-.
        destruct (Hut x c1 pa u b sz dev wm) as [Hd1 Hd2]; auto. { exists k'; auto. }
        split; [apply desc_insert_fresh; auto|].
        destruct Hwm as [->|Hnd]; [lia|]. exfalso; eapply Hnd; eauto.
      * rewrite lookup_insert_ne in H2 by congruence.
        destruct (Hut x c1 pa u' b' sz' dev' wm') as [Hd1 Hd2]; auto. { exists k'; auto. }
        split; auto. apply desc_insert_fresh; auto.
  - intros x1 x2 c1 c2 k1 k2 pa H1 H2 Ho1 Ho2.
    assert (G : ∀ x c0 k0 pa0, <[dst := c]> (<[u := CUntyped b sz dev (S wm0)]> m) !! x = Some c0 ->
              obj_of c0 = Some (k0, pa0) ->
              (k0 = k /\ pa0 = b + wm0) \/ ∃ c3, m !! x = Some c3 /\ obj_of c3 = Some (k0, pa0)).
    { intros x c0 k0 pa0 Hx Hc0. destruct (decide (x = dst)) as [->|Hne].
      - rewrite lookup_insert in Hx. injection Hx as <-. left. rewrite Ho in Hc0. injection Hc0. auto.
      - rewrite lookup_insert_ne in Hx by congruence. destruct (decide (x = u)) as [->|Hne'].
        + rewrite lookup_insert in Hx. injection Hx as <-. discriminate.
        + rewrite lookup_insert_ne in Hx by congruence. eauto. }
    destruct (G _ _ _ _ H1 Ho1) as [[-> ->]|(d1 & E1 & F1)];
    destruct (G _ _ _ _ H2 Ho2) as [[-> E]|(d2 & E2 & F2)]; auto.
    + exfalso. eapply (Hfr _ d2 E2). exists k2. congruence.
    + exfalso. eapply (Hfr _ d1 E1). exists k1. congruence.
    + eapply (Hobj _ _ d1 d2); eauto.
  - intros x pa r dev1 mp u' b' sz' dev' wm' H1 H2 Hb.
    destruct (decide (u' = dst)) as [->|Hne].
    { rewrite lookup_insert in H2. injection H2 as H2; subst; destruct Hn. }
    rewrite lookup_insert_ne in H2 by congruence.
    destruct (decide (x = dst)) as [->|Hxd].
    + rewrite lookup_insert in H1. injection H1 as H1. subst c. simpl in Ho, Hf.
      injection Ho as <-. destruct Hf as [Hf|Hf]; [discriminate|]. injection Hf as ->.
      destruct (decide (u' = u)) as [->|Hne'].
      * rewrite lookup_insert in H2. congruence.
      * rewrite lookup_insert_ne in H2 by congruence. exfalso.
        apply Hne'. eapply (Hdisj u' u); eauto; simpl; lia.
    + rewrite lookup_insert_ne in H1 by congruence.
      destruct (decide (x = u)) as [->|Hxu].
      { rewrite lookup_insert in H1. discriminate. }
      rewrite lookup_insert_ne in H1 by congruence.
      destruct (decide (u' = u)) as [->|Hne'].
      * rewrite lookup_insert in H2. injection H2 as <- <- <- <-. eauto.
      * rewrite lookup_insert_ne in H2 by congruence. eauto.
Qed.

Lemma walk_zero s s' pa R i j :
  rootent s' = upd (rootent s) pa (fun _ => None) ->
  leafent s' = upd (leafent s) pa (fun _ => None) ->
  (∀ R' i', rootent s R' i' <> Some pa) -> R <> pa -> walk s' R i j = walk s R i j.
Proof.
  intros Hr Hl Hn Hne. unfold walk. rewrite Hr, Hl. unfold upd.
  destruct (Nat.eqb_spec R pa); [congruence|].
  destruct (rootent s R i) as [T|] eqn:E; auto.
  destruct (Nat.eqb_spec T pa); [subst; exfalso; eapply Hn; eauto|auto].
Qed.

Lemma lk2 (m : gmap nat cap) x c0 dst c u cu cu' :
  m !! x = Some c0 -> m !! dst = None -> m !! u = Some cu -> c0 <> cu ->
  <[dst:=c]> (<[u:=cu']> m) !! x = Some c0.
Proof.
  intros Hx Hd Hu Hne. rewrite !lookup_insert_ne; auto; intros ->; congruence.
Qed.

Lemma lk2_inv (m : gmap nat cap) x c0 dst c u cu' :
  <[dst:=c]> (<[u:=cu']> m) !! x = Some c0 ->
  (x = dst /\ c0 = c) \/ (x = u /\ x <> dst /\ c0 = cu') \/ (x <> dst /\ x <> u /\ m !! x = Some c0).
Proof.
  intros H. destruct (decide (x = dst)) as [->|Hd].
  - rewrite lookup_insert in H. injection H. auto.
  - rewrite lookup_insert_ne in H by congruence. destruct (decide (x = u)) as [->|Hu].
    + rewrite lookup_insert in H. injection H. auto.
    + rewrite lookup_insert_ne in H by congruence. auto.
Qed.

Lemma retype_io s u b sz dev wm wm0 dst k d nd :
  inv s -> caps s !! u = Some (CUntyped b sz dev wm) -> caps s !! dst = None -> u <> dst ->
  (∀ x c0, caps s !! x = Some c0 -> ~ covers c0 (b + wm0)) -> wm0 < sz ->
  (wm0 = wm \/ ∀ x, ~ desc (parent s) u x) -> (dev = true -> k = KFrame) ->
  (∀ R e, nd !! R = Some e <-> doms s !! R = Some e \/ (k = KIoSpace /\ R = b + wm0 /\ e = d)) ->
  (k = KIoSpace -> ∀ R, doms s !! R <> Some d) ->
  inv (set_doms (set_leaf (set_root (set_tree (set_caps s
         (<[dst := new_cap k (b + wm0) dev d]> (<[u := CUntyped b sz dev (S wm0)]> (caps s))))
         (<[dst := u]> (parent s)) ({[dst]} ∪ orig s))
         (upd (rootent s) (b + wm0) (fun _ => None)))
         (upd (leafent s) (b + wm0) (fun _ => None))) nd).
Proof.
  intros Hi Hu Hd Hud Hfr Hlt Hwm Hdev Hnd Hdf. set (pa := b + wm0) in *.
  pose proof Hi as Hi0. dinv Hi.
  assert (Hpl : doms s !! pa = None).
  { destruct (doms s !! pa) as [e|] eqn:E; auto. destruct (Hdoms _ _ E) as [x Hx].
    exfalso. eapply Hfr; eauto. eexists; reflexivity. }
  assert (Hnr : ∀ R' i', rootent s R' i' <> Some pa).
  { intros R' i' E. destruct (Hroot _ _ _ E) as [x Hx]. eapply Hfr; eauto. eexists; reflexivity. }
  assert (Hlive : ∀ R e, doms s !! R = Some e -> R <> pa) by congruence.
  assert (Hnu : ∀ x c0, caps s !! x = Some c0 -> not_ut c0 ->
                <[dst := new_cap k pa dev d]> (<[u := CUntyped b sz dev (S wm0)]> (caps s)) !! x = Some c0).
  { intros x c0 Hx Hn. eapply lk2; eauto. intros ->. exact Hn. }
  constructor; simpl.
  - eapply mem_retype; eauto using new_cap_obj, new_cap_not_ut.
    destruct k; simpl; auto.
  - intros x R e Hx. apply lk2_inv in Hx as [(-> & Hc)|[(-> & _ & Hc)|(_ & _ & Hx)]].
    + destruct k; simpl in Hc; try discriminate. injection Hc as <- <-. apply Hnd. auto.
    + discriminate.
    + apply Hnd. eauto.
  - intros R e H. apply Hnd in H as [H|(-> & -> & ->)].
    + destruct (Hdoms _ _ H) as [x Hx]. exists x. apply Hnu; simpl; auto.
    + exists dst. rewrite lookup_insert. auto.
  - intros R1 R2 e H1 H2. apply Hnd in H1. apply Hnd in H2.
    destruct H1 as [H1|(Hk & E1 & E1')]; destruct H2 as [H2|(Hk' & E2 & E2')].
    + eauto.
    + subst. exfalso. eapply Hdf; eauto.
    + subst. exfalso. eapply Hdf; eauto.
    + congruence.
  - intros rid R e H. apply Hnd. eauto.
  - auto.
  - intros e He. destruct (Htlb e He) as (R & H1 & H2). exists R. split; [apply Hnd; auto|].
    rewrite <- H2. eapply (walk_zero s); simpl; eauto.
  - intros R e i j pa' r HR Hw. apply Hnd in HR as [HR|(_ & -> & ->)].
    + erewrite (walk_zero s) in Hw; simpl; eauto.
      destruct (Hjust _ _ _ _ _ _ HR Hw) as (x & r0 & Hx & Hr). exists x, r0. split; auto.
      apply Hnu; simpl; auto.
    + unfold walk in Hw. simpl in Hw. unfold upd in Hw. rewrite Nat.eqb_refl in Hw. discriminate.
  - intros R i T H. unfold upd in H. destruct (Nat.eqb_spec R pa); [discriminate|].
    destruct (Hroot _ _ _ H) as [x Hx]. exists x. apply Hnu; simpl; auto.
  - intros T j v H. unfold upd in H. destruct (Nat.eqb_spec T pa); [discriminate|].
    destruct (Hempty _ _ _ H) as (x & mm & Hx). exists x, mm. apply Hnu; simpl; auto.
  - intros x1 x2 T m1 m2 H1 H2.
    apply lk2_inv in H1 as [(-> & Hc1)|[(-> & _ & Hc1)|(Hd1 & Hu1 & H1)]];
    apply lk2_inv in H2 as [(-> & Hc2)|[(-> & _ & Hc2)|(Hd2 & Hu2 & H2)]]; try discriminate; auto.
    + destruct k; simpl in Hc1; try discriminate. injection Hc1 as -> _.
      exfalso. eapply Hfr; eauto. eexists; reflexivity.
    + destruct k; simpl in Hc2; try discriminate. injection Hc2 as -> _.
      exfalso. eapply Hfr; eauto. eexists; reflexivity.
    + eauto.
  - intros v e H. destruct (Hirte _ _ H) as (rid & x & -> & Hx). exists rid, x. split; auto.
    apply Hnu; simpl; auto.
  - intros x v rid Hx. apply lk2_inv in Hx as [(-> & Hc)|[(-> & _ & Hc)|(_ & _ & Hx)]]; eauto.
    + destruct k; discriminate.
    + discriminate.
  - auto.
Qed.

Lemma T1_retype s u k dst d : inv s -> inv (retype s u k dst d).
Proof.
  intros Hi. unfold retype.
  destruct (caps s !! u) as [[b sz dev wm| | | | | | | | | | |]|] eqn:Eu; auto.
  destruct (caps s !! dst) eqn:Ed; auto.
  set (wm0 := if has_children s u then wm else 0).
  case_bool_decide as Hc; auto.
  destruct Hc as (Hlt & Hud & Hdev & Hdf).
  assert (Hfr : ∀ x c0, caps s !! x = Some c0 -> ~ covers c0 (b + wm0)).
  { intros x c0 Hx. eapply retype_fresh; eauto. apply Hi. }
  assert (Hwm : wm0 = wm \/ ∀ x, ~ desc (parent s) u x).
  { unfold wm0, has_children. case_bool_decide as Hch; auto. right. intros x Hdx.
    destruct (desc_first _ _ _ Hdx) as [c Hc]. apply Hch. exists c, u. auto. }
  assert (Hpl : doms s !! (b + wm0) = None).
  { destruct (doms s !! (b + wm0)) as [e|] eqn:E; auto. destruct (i_doms _ Hi _ _ E) as [x Hx].
    exfalso. eapply Hfr; eauto. eexists; reflexivity. }
  destruct k.
  all: try (eapply (retype_io s u b sz dev wm wm0 dst _ d (doms s)); try eassumption;
            try (intros; discriminate);
            intros R e; split; [auto|intros [?|(? & _)]; [auto|discriminate]]; fail).
  apply inv_faults. eapply (retype_io s u b sz dev wm wm0 dst _ d (<[b + wm0 := d]> (doms s))); eauto.
  intros R e. rewrite lookup_insert_Some. split.
  - intros [(<- & <-)|(Hne & H)]; auto.
  - intros [H|(_ & -> & ->)]; auto. right. split; auto. congruence.
  - intros _ R HR. exact (Hdf eq_refl R d HR eq_refl).
Qed.
