(** Lemmas: facts about record updates, filters, walks and the derivation tree. *)
From Iso Require Export Invariant.

Ltac dinv H := destruct H as [Hmem Hios Hdoms Huniq
  Hctx Hctxc Htlb Hjust Hroot Hempty Hiopt1 Hirte Hmsi Hirtec].
Ltac dmem H := destruct H as [Htree Hacyc Hdisj Hutk Hkern Hut Hobj Hdev].

Lemma in_filter {A} (P : A -> Prop) `{∀ x, Decision (P x)} x l :
  In x (filter P l) <-> P x /\ In x l.
Proof. rewrite <- !elem_of_list_In. apply elem_of_list_filter. Qed.

Lemma upd_eq {A} (f : nat -> A) k v : upd f k v k = v.
Proof. unfold upd. now rewrite Nat.eqb_refl. Qed.
Lemma upd_ne {A} (f : nat -> A) k v x : x <> k -> upd f k v x = f x.
Proof. unfold upd. intros H. destruct (Nat.eqb_spec x k); congruence. Qed.
Lemma upd2_eq {A} (f : nat -> nat -> A) k l v : upd2 f k l v k l = v.
Proof. unfold upd2. now rewrite !Nat.eqb_refl. Qed.
Lemma upd2_ne {A} (f : nat -> nat -> A) k l v x y :
  (x, y) <> (k, l) -> upd2 f k l v x y = f x y.
Proof.
  unfold upd2. intros H. destruct (Nat.eqb_spec x k), (Nat.eqb_spec y l); subst; simpl;
  congruence.
Qed.

(** Removing cache entries keeps the invariant. *)
Lemma inv_tlb_sub s t : inv s -> (∀ e, In e t -> In e (iotlb s)) -> inv (set_tlb s t).
Proof. intros [] Hs; constructor; simpl; eauto. Qed.
Lemma inv_ctxc_sub s cc : inv s -> (∀ e, In e cc -> In e (ctxc s)) ->
  inv (set_ctx s (ctx s) cc).
Proof. intros [] Hs; constructor; simpl; eauto. Qed.
Lemma inv_irtec_sub s ic : inv s -> (∀ e, In e ic -> In e (irtec s)) ->
  inv (set_irte s (irte s) ic).
Proof. intros [] Hs; constructor; simpl; eauto. Qed.
Lemma inv_faults s f : inv s -> inv (set_faults s f).
Proof. intros []; constructor; simpl; eauto. Qed.

Lemma inv_inval_page s d i j : inv s -> inv (inval_page s d i j).
Proof. intros. apply inv_tlb_sub; auto. intros e. rewrite in_filter. tauto. Qed.
Lemma inv_inval_range s d i : inv s -> inv (inval_range s d i).
Proof. intros. apply inv_tlb_sub; auto. intros e. rewrite in_filter. tauto. Qed.
Lemma inv_inval_domain s d : inv s -> inv (inval_domain s d).
Proof. intros. apply inv_tlb_sub; auto. intros e. rewrite in_filter. tauto. Qed.
Lemma inv_inval_ctx s rid : inv s -> inv (inval_ctx s rid).
Proof. intros. apply inv_ctxc_sub; auto. intros e. rewrite in_filter. tauto. Qed.
Lemma inv_inval_irte s v : inv s -> inv (inval_irte s v).
Proof. intros. apply inv_irtec_sub; auto. intros e. rewrite in_filter. tauto. Qed.

(** The derivation relation depends only on the parent map. *)
Lemma desc_insert_fresh par k v u x :
  par !! k = None -> desc par u x -> desc (<[k := v]> par) u x.
Proof.
  intros Hk. induction 1.
  - apply d_base. rewrite lookup_insert_ne; congruence.
  - eapply d_step; eauto. rewrite lookup_insert_ne; congruence.
Qed.

Lemma desc_first par u x : desc par u x -> ∃ c, par !! c = Some u.
Proof. induction 1; eauto. Qed.

Lemma desc_reparent par x u :
  (∀ y, par !! y <> Some y) -> u <> x ->
  ∀ s, desc par u s ->
    (s <> x -> desc (reparent par x) u s) /\
    (s = x -> ∀ c, par !! c = Some x -> c <> x -> desc (reparent par x) u c).
Proof.
  intros Hloop Hux. unfold reparent.
  induction 1 as [s Hs | s p Hp IH Hs].
  - split.
    + intros Hsx. apply d_base. rewrite lookup_omap, lookup_delete_ne by congruence.
      rewrite Hs. simpl. destruct (Nat.eq_dec u x); congruence.
    + intros -> c Hc Hcx. apply d_base. rewrite lookup_omap, lookup_delete_ne by congruence.
      rewrite Hc. simpl. destruct (Nat.eq_dec x x); congruence.
  - destruct IH as [IH1 IH2]. split.
    + intros Hsx. destruct (Nat.eq_dec p x) as [->|Hpx].
      * apply (IH2 eq_refl); auto.
      * eapply d_step. apply IH1; auto.
        rewrite lookup_omap, lookup_delete_ne by congruence. rewrite Hs. simpl.
        destruct (Nat.eq_dec p x); congruence.
    + intros -> c Hc Hcx. destruct (Nat.eq_dec p x) as [->|Hpx].
      * exfalso. eapply Hloop; eauto.
      * eapply d_step. apply IH1; auto.
        rewrite lookup_omap, lookup_delete_ne by congruence. rewrite Hc. simpl.
        destruct (Nat.eq_dec x x); [|congruence]. auto.
Qed.

Lemma desc_no_children par u x :
  (∀ c, par !! c <> Some u) -> ~ desc par u x.
Proof. intros H Hd. destruct (desc_first _ _ _ Hd) as [c Hc]. eapply H; eauto. Qed.

Lemma desc_insert_leaf par dst q u y :
  desc (<[dst := q]> par) u y -> (∀ c, par !! c <> Some dst) -> q <> dst ->
  u <> dst /\ (desc par u y \/ (y = dst /\ (q = u \/ desc par u q))).
Proof.
  intros Hd Hn Hq. induction Hd as [y Hy|y p' Hp IH Hy].
  - destruct (decide (y = dst)) as [->|Hne].
    + rewrite lookup_insert in Hy. injection Hy as <-. auto.
    + rewrite lookup_insert_ne in Hy by congruence. split; [intros ->; eapply Hn; eauto|].
      left. apply d_base. auto.
  - destruct IH as [Hu [IH|(-> & IH)]]; split; auto.
    + destruct (decide (y = dst)) as [->|Hne].
      * rewrite lookup_insert in Hy. injection Hy as ->. auto.
      * rewrite lookup_insert_ne in Hy by congruence. left. eapply d_step; eauto.
    + destruct (decide (y = dst)) as [->|Hne].
      * rewrite lookup_insert in Hy. congruence.
      * rewrite lookup_insert_ne in Hy by congruence. exfalso. eapply Hn; eauto.
Qed.

Lemma acyc_insert_leaf par dst q :
  (∀ x, ~ desc par x x) -> (∀ c, par !! c <> Some dst) -> q <> dst ->
  ∀ x, ~ desc (<[dst := q]> par) x x.
Proof.
  intros Ha Hn Hq x Hd. destruct (desc_insert_leaf _ _ _ _ _ Hd Hn Hq) as [Hx [H|(-> & _)]].
  - eapply Ha; eauto.
  - congruence.
Qed.

Lemma reparent_lookup par x y q :
  reparent par x !! y = Some q ->
  y <> x /\ (par !! y = Some q \/ (par !! y = Some x /\ par !! x = Some q)).
Proof.
  unfold reparent. rewrite lookup_omap.
  destruct (decide (y = x)) as [->|Hyx].
  - rewrite lookup_delete. discriminate.
  - rewrite lookup_delete_ne by congruence. destruct (par !! y) as [p|] eqn:E; simpl; [|discriminate].
    destruct (Nat.eq_dec p x); subst; intros; eauto.
Qed.

Lemma desc_reparent_old par x u y : desc (reparent par x) u y -> desc par u y.
Proof.
  induction 1 as [y Hy|y p Hp IH Hy].
  - apply reparent_lookup in Hy as [_ [Hy|[Hy1 Hy2]]].
    + apply d_base; auto.
    + eapply d_step; [apply d_base; eauto|]. auto.
  - apply reparent_lookup in Hy as [_ [Hy|[Hy1 Hy2]]].
    + eapply d_step; eauto.
    + eapply d_step; [eapply d_step; eauto|]. auto.
Qed.

Ltac lk := repeat match goal with
  | H : <[?k:=_]> _ !! ?x = _ |- _ =>
      destruct (decide (x = k)); [subst; rewrite lookup_insert in H|
                                  rewrite lookup_insert_ne in H by congruence]
  | H : Some _ = Some _ |- _ => injection H as H; try subst
  end; try discriminate.

Definition not_ut (c : cap) : Prop := match c with CUntyped _ _ _ _ => False | _ => True end.
Definition fdev (c : cap) : option bool := match c with CFrame _ _ d _ => Some d | _ => None end.

Lemma not_ut_in c pa : not_ut c -> in_ut c pa -> False.
Proof. destruct c; simpl; tauto. Qed.

Lemma is_Some_insert {A} (m : gmap nat A) k v x : is_Some (m !! x) -> is_Some (<[k:=v]> m !! x).
Proof. intros H. rewrite lookup_insert_is_Some'. auto. Qed.

Lemma frame_same c c' pa r dev mp :
  obj_of c' = obj_of c -> fdev c' = fdev c -> c' = CFrame pa r dev mp ->
  ∃ r0 mp0, c = CFrame pa r0 dev mp0.
Proof. intros Ho Hd ->. destruct c; simpl in *; try discriminate. inversion Ho; inversion Hd; subst; eauto. Qed.

Lemma lookup_replace_obj (m : gmap nat cap) f c c' x c1 :
  <[f:=c']> m !! x = Some c1 -> m !! f = Some c -> obj_of c' = obj_of c ->
  ∃ c0, m !! x = Some c0 /\ obj_of c0 = obj_of c1.
Proof.
  intros H Hf Ho. destruct (decide (x = f)) as [->|Hne].
  - rewrite lookup_insert in H. injection H as <-. eauto.
  - rewrite lookup_insert_ne in H by congruence. eauto.
Qed.

(** Replacing a cap by one to the same object (not an untyped) keeps [mem_inv]. *)
Lemma mem_replace m p lo hi f c c' :
  mem_inv m p lo hi -> m !! f = Some c -> obj_of c' = obj_of c -> not_ut c -> not_ut c' ->
  fdev c' = fdev c -> mem_inv (<[f := c']> m) p lo hi.
Proof.
  intros Hm Hf Ho Hu Hu' Hd. dmem Hm. constructor.
  - intros x q Hx. destruct (Htree _ _ Hx) as (H1 & H2 & H3). auto using is_Some_insert.
  - auto.
  - intros u1 u2 c1 c2 pa H1 H2 Hi1 Hi2. lk; eauto; exfalso; eauto using not_ut_in.
  - intros u c1 pa H1 Hi1. lk; eauto; exfalso; eauto using not_ut_in.
  - intros x c1 pa H1 [k Hc]. lk; (eapply Hkern; [eassumption|exists k; congruence]).
  - intros x c1 pa u b sz dev wm H1 [k Hc] H2 Hb.
    destruct (decide (u = f)) as [->|Hne].
    { rewrite lookup_insert in H2. injection H2 as H2; subst; destruct Hu'. }
    rewrite lookup_insert_ne in H2 by congruence.
    destruct (decide (x = f)) as [->|Hxf].
    + rewrite lookup_insert in H1. injection H1 as <-.
      apply (Hut f c pa u b sz dev wm); auto. exists k; congruence.
    + rewrite lookup_insert_ne in H1 by congruence.
      apply (Hut x c1 pa u b sz dev wm); auto. exists k; auto.
  - intros x1 x2 c1 c2 k1 k2 pa H1 H2 Ho1 Ho2.
    destruct (lookup_replace_obj _ _ _ _ _ _ H1 Hf Ho) as (d1 & E1 & F1).
    destruct (lookup_replace_obj _ _ _ _ _ _ H2 Hf Ho) as (d2 & E2 & F2).
    apply (Hobj x1 x2 d1 d2 k1 k2 pa); auto; congruence.
  - intros x pa r dev mp u b sz dev' wm H1 H2 Hb.
    destruct (decide (u = f)) as [->|Hne].
    { rewrite lookup_insert in H2. injection H2 as H2; subst; destruct Hu'. }
    rewrite lookup_insert_ne in H2 by congruence.
    destruct (decide (x = f)) as [->|Hxf].
    + rewrite lookup_insert in H1. injection H1 as H1.
      destruct (frame_same _ _ _ _ _ _ Ho Hd H1) as (r0 & mp0 & ->). eauto.
    + rewrite lookup_insert_ne in H1 by congruence. eauto.
Qed.

Lemma ex_keep (m : gmap nat cap) f c c' c0 :
  m !! f = Some c -> c0 <> c -> (∃ x, m !! x = Some c0) -> ∃ x, <[f:=c']> m !! x = Some c0.
Proof.
  intros Hf Hne [x Hx]. exists x. rewrite lookup_insert_ne; auto. intros ->. congruence.
Qed.

Lemma ex2_keep (m : gmap nat cap) f c c' (P : cap -> Prop) :
  m !! f = Some c -> ~ P c -> (∃ x c0, m !! x = Some c0 /\ P c0) ->
  ∃ x c0, <[f:=c']> m !! x = Some c0 /\ P c0.
Proof.
  intros Hf Hne (x & c0 & Hx & Hp). exists x, c0. rewrite lookup_insert_ne; auto.
  intros ->. congruence.
Qed.

(** The table an IOSpace's live root entry names has one cap, recording that entry. *)
Lemma root_unique s R1 R2 i1 i2 T :
  inv s -> rootent s R1 i1 = Some T -> rootent s R2 i2 = Some T -> R1 = R2 /\ i1 = i2.
Proof.
  intros Hi E1 E2. dinv Hi.
  destruct (Hroot _ _ _ E1) as [x1 X1]. destruct (Hroot _ _ _ E2) as [x2 X2].
  pose proof (Hiopt1 _ _ _ _ _ X1 X2) as ->. rewrite X1 in X2. injection X2. auto.
Qed.

Ltac dgoal Hi := repeat match goal with
  | |- inv (match ?x with _ => _ end) => let E := fresh "E" in destruct x eqn:E
  | |- inv (if ?b then _ else _) => let E := fresh "E" in destruct b eqn:E
  end; try exact Hi.

Lemma ex_iopt_keep (mp : gmap nat cap) f c c' T :
  mp !! f = Some c -> (∀ m, c <> CIoPageTable T (Some m)) ->
  (∃ x m, mp !! x = Some (CIoPageTable T (Some m))) ->
  ∃ x m, <[f:=c']> mp !! x = Some (CIoPageTable T (Some m)).
Proof.
  intros Hf Hne (x & m & Hx). exists x, m. rewrite lookup_insert_ne; auto.
  intros ->. rewrite Hf in Hx. injection Hx as Hx. eapply Hne; eauto.
Qed.

(** A new cap in an empty slot, a child of the cap in [q], naming no object or q's. *)
Lemma mem_insert m p lo hi dst q cq c :
  mem_inv m p lo hi -> m !! dst = None -> m !! q = Some cq -> q <> dst -> not_ut c ->
  (obj_of c = None \/ obj_of c = obj_of cq) -> (fdev c = None \/ fdev c = fdev cq) ->
  mem_inv (<[dst := c]> m) (<[dst := q]> p) lo hi.
Proof.
  intros Hm Hd Hq Hqd Hu Ho Hf. dmem Hm.
  assert (Hpd : p !! dst = None).
  { destruct (p !! dst) eqn:E; auto. destruct (Htree _ _ E) as ([? H] & _). congruence. }
  constructor.
  - intros x y Hx. destruct (decide (x = dst)) as [->|Hne].
    + rewrite lookup_insert in Hx. injection Hx as <-.
      rewrite lookup_insert, lookup_insert_ne by congruence. eauto.
    + rewrite lookup_insert_ne in Hx by congruence. destruct (Htree _ _ Hx) as (H1 & H2 & H3).
      auto using is_Some_insert.
  - apply acyc_insert_leaf; auto. intros c' Hc'. destruct (Htree _ _ Hc') as (_ & [? H] & _).
    congruence.
  - intros u1 u2 c1 c2 pa H1 H2 Hi1 Hi2. lk; eauto; exfalso; eauto using not_ut_in.
  - intros u c1 pa H1 Hi1. lk; eauto; exfalso; eauto using not_ut_in.
  - intros x c1 pa H1 [k Hc]. destruct (decide (x = dst)) as [->|Hne].
    + rewrite lookup_insert in H1. injection H1 as <-. destruct Ho as [Ho|Ho]; [congruence|].
      eapply Hkern; [exact Hq|]. exists k. congruence.
    + rewrite lookup_insert_ne in H1 by congruence. eapply Hkern; [exact H1|]. exists k; auto.
  - intros x c1 pa u b sz dev wm H1 [k Hc] H2 Hb.
    destruct (decide (u = dst)) as [->|Hne].
    { rewrite lookup_insert in H2. injection H2 as H2; subst; destruct Hu. }
    rewrite lookup_insert_ne in H2 by congruence.
    destruct (decide (x = dst)) as [->|Hxd].
    + rewrite lookup_insert in H1. injection H1 as <-. destruct Ho as [Ho|Ho]; [congruence|].
      destruct (Hut q cq pa u b sz dev wm) as [Hd1 Hd2]; auto. { exists k; congruence. }
      split; auto. eapply d_step; [|apply lookup_insert]. apply desc_insert_fresh; auto.
    + rewrite lookup_insert_ne in H1 by congruence.
      destruct (Hut x c1 pa u b sz dev wm) as [Hd1 Hd2]; auto. { exists k; auto. }
      split; auto. apply desc_insert_fresh; auto.
  - intros x1 x2 c1 c2 k1 k2 pa H1 H2 Ho1 Ho2.
    assert (G : ∀ x c0, <[dst:=c]> m !! x = Some c0 -> obj_of c0 <> None ->
                ∃ c3, m !! x = Some c3 /\ obj_of c3 = obj_of c0 \/ m !! q = Some c3 /\ obj_of c3 = obj_of c0).
    { intros x c0 Hx Hn. destruct (decide (x = dst)) as [->|Hne].
      - rewrite lookup_insert in Hx. injection Hx as <-. destruct Ho; [congruence|]. eauto.
      - rewrite lookup_insert_ne in Hx by congruence. eauto. }
    assert (N1 : obj_of c1 <> None) by congruence.
    assert (N2 : obj_of c2 <> None) by congruence.
    destruct (G _ _ H1 N1) as (d1 & [[E1 F1]|[E1 F1]]);
    destruct (G _ _ H2 N2) as (d2 & [[E2 F2]|[E2 F2]]);
    (eapply (Hobj _ _ d1 d2 k1 k2 pa); [eassumption|eassumption|congruence|congruence]).
  - intros x pa r dev mp u b sz dev' wm H1 H2 Hb.
    destruct (decide (u = dst)) as [->|Hne].
    { rewrite lookup_insert in H2. injection H2 as H2; subst; destruct Hu. }
    rewrite lookup_insert_ne in H2 by congruence.
    destruct (decide (x = dst)) as [->|Hxd].
    + rewrite lookup_insert in H1. injection H1 as H1. subst c.
      destruct Ho as [Ho|Ho]; [discriminate|]. destruct Hf as [Hf|Hf]; [discriminate|].
      destruct (frame_same _ _ _ _ _ _ Ho Hf eq_refl) as (r0 & mp0 & ->). eauto.
    + rewrite lookup_insert_ne in H1 by congruence. eauto.
Qed.

Lemma ex_ins (m : gmap nat cap) f c' c0 :
  m !! f <> Some c0 -> (∃ x, m !! x = Some c0) -> ∃ x, <[f:=c']> m !! x = Some c0.
Proof. intros Hne [x Hx]. exists x. rewrite lookup_insert_ne; auto. intros ->. congruence. Qed.

Lemma ex_iopt_ins (mp : gmap nat cap) f c' T :
  (∀ m, mp !! f <> Some (CIoPageTable T (Some m))) ->
  (∃ x m, mp !! x = Some (CIoPageTable T (Some m))) ->
  ∃ x m, <[f:=c']> mp !! x = Some (CIoPageTable T (Some m)).
Proof.
  intros Hne (x & m & Hx). exists x, m. rewrite lookup_insert_ne; auto.
  intros ->. eapply Hne; eauto.
Qed.

Lemma ex_frame_ins (mp : gmap nat cap) f c' pa R i j r :
  (∀ r0, mp !! f <> Some (CFrame pa r0 false (Some (R, i, j)))) ->
  (∃ x r0, mp !! x = Some (CFrame pa r0 false (Some (R, i, j))) /\ rsub r r0 = true) ->
  ∃ x r0, <[f:=c']> mp !! x = Some (CFrame pa r0 false (Some (R, i, j))) /\ rsub r r0 = true.
Proof.
  intros Hne (x & r0 & Hx & Hr). exists x, r0. rewrite lookup_insert_ne; auto.
  intros ->. eapply Hne; eauto.
Qed.
