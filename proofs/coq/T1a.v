(** T1a: the invariant is kept by hardware steps and by the IO mapping operations. *)
From Iso Require Export Lemmas.


Lemma walk_set_tlb s t R i j : walk (set_tlb s t) R i j = walk s R i j.
Proof. reflexivity. Qed.

Theorem T1_hw s s' : inv s -> hw s s' -> inv s'.
Proof.
  intros Hi Hh. destruct Hh as [s rid R d i j pa r Hv Hw|s rid e He|s v e He
    |s t cc ic Ht Hc Hic|s|s rid i j w Hn|s].
  - dinv Hi; constructor; simpl; eauto.
    intros e [<-|Hin]; eauto. simpl. exists R. split; auto.
    destruct Hv as [Hv|Hv]; eauto.
  - dinv Hi; constructor; simpl; eauto. intros r e' [Heq|Hin]; eauto. congruence.
  - dinv Hi; constructor; simpl; eauto. intros v' e' [Heq|Hin]; eauto. congruence.
  - apply (inv_irtec_sub (set_ctx (set_tlb s t) (ctx s) cc)); simpl; auto.
    apply (inv_ctxc_sub (set_tlb s t)); simpl; auto. apply inv_tlb_sub; auto.
  - auto.
  - unfold record_fault. destruct (ctx s !! rid) as [[]|]; auto. apply inv_faults; auto.
  - auto.
Qed.

Lemma T1_next_fault s io : inv s -> inv (next_fault s io).
Proof. intros Hi. unfold next_fault. destruct (caps s !! io) as [[]|]; auto using inv_faults. Qed.

Lemma T1_assign s io pci : inv s -> inv (assign s io pci).
Proof.
  intros Hi. unfold assign.
  destruct (caps s !! io) as [[]|] eqn:Eio; auto.
  destruct (caps s !! pci) as [[]|] eqn:Ep; auto.
  destruct (ctx s !! rid) eqn:Ec; auto.
  apply inv_inval_domain, inv_inval_ctx. dinv Hi; constructor; simpl; eauto.
  - intros r R d [Heq|Hne]%lookup_insert_Some.
    + destruct Heq as [-> [=<- <-]]. eauto.
    + destruct Hne; eauto.
  - intros r e Hin. specialize (Hctxc _ _ Hin).
    destruct (decide (r = rid)); [subst; congruence|]. rewrite lookup_insert_ne; auto.
Qed.

Lemma T1_unassign s io pci : inv s -> inv (unassign s io pci).
Proof.
  intros Hi. unfold unassign.
  destruct (caps s !! io) as [[]|] eqn:Eio; auto.
  destruct (caps s !! pci) as [[]|] eqn:Ep; auto.
  destruct (ctx s !! rid) as [[R' d']|] eqn:Ec; auto.
  destruct (Nat.eq_dec root R'); auto.
  apply inv_inval_domain.
  assert (Hi' : inv (inval_ctx s rid)) by (apply inv_inval_ctx; auto).
  dinv Hi'; constructor; simpl in *; eauto.
  - intros r R d Hl. apply lookup_delete_Some in Hl as [_ Hl]. eauto.
  - intros r e0 Hin. pose proof (Hctxc _ _ Hin) as Hc.
    apply in_filter in Hin as [Hne _]. simpl in Hne. rewrite lookup_delete_ne; auto.
Qed.

Lemma T1_map_frame s f io i j r : inv s -> inv (map_frame s f io i j r).
Proof.
  intros Hi. unfold map_frame. dgoal Hi.
  rename root into R, dom into d, n into T, E into Ef, E3 into Eio, E6 into ET, E7 into EL.
  apply andb_true_iff in E5 as [Er _].
  pose proof Hi as Hi0. dinv Hi. pose proof (Hios _ _ _ Eio) as HR.
  constructor; simpl.
  - eapply mem_replace; eauto; simpl; auto.
  - intros x R' d' Hx. lk; eauto.
  - intros R' d' H. eapply ex_keep; eauto; discriminate.
  - auto.
  - auto.
  - auto.
  - intros e He. destruct (Htlb e He) as (R' & H1 & H2). exists R'. split; auto.
    unfold walk, upd2 in *. simpl. destruct (rootent s R' (t_i e)) as [T'|]; try discriminate.
    destruct (Nat.eqb_spec T' T), (Nat.eqb_spec (t_j e) j); subst; simpl; auto; congruence.
  - intros R' d' i' j' pa' r' HR' Hw. unfold walk, upd2 in Hw. simpl in Hw.
    destruct (rootent s R' i') as [T'|] eqn:ET'; try discriminate.
    destruct (Nat.eqb_spec T' T) as [->|], (Nat.eqb_spec j' j) as [->|]; simpl in Hw.
    1: { injection Hw as <- <-.
      destruct (root_unique _ _ _ _ _ _ Hi0 ET' ET) as [-> ->].
      exists f, r0. rewrite lookup_insert. auto. }
    all: edestruct Hjust as (x & r1 & Hx & Hr); [exact HR'|unfold walk; rewrite ET'; exact Hw|];
      exists x, r1; split; [|exact Hr]; rewrite lookup_insert_ne; [exact Hx|intros ->; congruence].
  - intros R' i' T' H2. eapply ex_keep; eauto; discriminate.
  - intros T' j' v' Hl. unfold upd2 in Hl.
    destruct (Nat.eqb_spec T' T) as [->|], (Nat.eqb_spec j' j) as [->|]; simpl in Hl.
    1: { destruct (Hroot _ _ _ ET) as [x Hx]. exists x, (R, i).
      rewrite lookup_insert_ne; auto. intros ->. congruence. }
    all: eapply ex_iopt_keep; [exact Ef|congruence|eauto].
  - intros x1 x2 T' m1 m2 H1 H2. lk; eauto.
  - intros v e He. destruct (Hirte _ _ He) as (rid & x & -> & Hx). exists rid, x.
    split; auto. rewrite lookup_insert_ne; [auto|intros ->; congruence].
  - intros x v rid Hx. lk; eauto.
  - auto.
Qed.

Lemma T1_map_table s t io i : inv s -> inv (map_table s t io i).
Proof.
  intros Hi. unfold map_table. dgoal Hi.
  rename root into R, dom into d, pa into T.
  match goal with H : caps s !! io = _ |- _ => rename H into Eio end.
  match goal with H : caps s !! t = _ |- _ => rename H into Et end.
  match goal with H : rootent s R i = None |- _ => rename H into ER end.
  pose proof Hi as Hi0. dinv Hi. pose proof (Hios _ _ _ Eio) as HR.
  constructor; simpl.
  - eapply mem_replace; eauto; simpl; auto.
  - intros x R' d' Hx. lk; eauto.
  - intros R' d' H. eapply ex_keep; eauto; discriminate.
  - auto.
  - auto.
  - auto.
  - intros e He. destruct (Htlb e He) as (R' & H1 & H2). exists R'. split; auto.
    unfold walk, upd2 in *. simpl.
    destruct (Nat.eqb_spec R' R) as [->|], (Nat.eqb_spec (t_i e) i) as [Hti|]; simpl; auto.
    rewrite Hti, ER in H2. discriminate.
  - intros R' d' i' j' pa' r' HR' Hw. unfold walk, upd2 in Hw. simpl in Hw.
    destruct (Nat.eqb_spec R' R) as [->|], (Nat.eqb_spec i' i) as [->|]; simpl in Hw.
    1: { exfalso. destruct (Hempty _ _ _ Hw) as (x & m0 & Hx).
         pose proof (Hiopt1 _ _ _ _ _ Hx Et) as ->. congruence. }
    all: edestruct Hjust as (x & r1 & Hx & Hr); [exact HR'|unfold walk; exact Hw|];
      exists x, r1; split; [|exact Hr]; rewrite lookup_insert_ne; [exact Hx|intros ->; congruence].
  - intros R' i' T' H2. unfold upd2 in H2.
    destruct (Nat.eqb_spec R' R) as [->|], (Nat.eqb_spec i' i) as [->|]; simpl in H2.
    1: { injection H2 as <-. exists t. rewrite lookup_insert. auto. }
    all: edestruct Hroot as (x & Hx); [exact H2|];
      exists x; rewrite lookup_insert_ne; [exact Hx|intros ->; congruence].
  - intros T' j' v' Hl. eapply ex_iopt_keep; [exact Et|congruence|eauto].
  - intros x1 x2 T' m1 m2 H1 H2. lk; eauto.
  - intros v e He. destruct (Hirte _ _ He) as (rid & x & -> & Hx). exists rid, x.
    split; auto. rewrite lookup_insert_ne; [auto|intros ->; congruence].
  - intros x v rid Hx. lk; eauto.
  - auto.
Qed.

Lemma unmap_keep s f pa r dev R i j :
  inv s -> caps s !! f = Some (CFrame pa r dev (Some (R, i, j))) ->
  (∀ r', walk s R i j <> Some (pa, r')) ->
  inv (set_caps s (<[f := CFrame pa r dev None]> (caps s))).
Proof.
  intros Hi Ef Hw0. dinv Hi. constructor; simpl.
  - eapply mem_replace; eauto; simpl; auto.
  - intros x R' d' Hx. lk; eauto.
  - intros R' d' H. eapply ex_keep; eauto; discriminate.
  - auto.
  - auto.
  - auto.
  - auto.
  - intros R' d' i' j' pa' r' HR' Hw.
    edestruct Hjust as (x & r1 & Hx & Hr); [exact HR'|exact Hw|].
    exists x, r1; split; [|exact Hr]. rewrite lookup_insert_ne; [exact Hx|intros ->].
    rewrite Ef in Hx. injection Hx; intros; subst. eapply Hw0; eauto.
  - intros R' i' T' H2. eapply ex_keep; eauto; discriminate.
  - intros T' j' v' Hl. eapply ex_iopt_keep; [exact Ef|congruence|eauto].
  - intros x1 x2 T' m1 m2 H1 H2. lk; eauto.
  - intros v e He. destruct (Hirte _ _ He) as (rid & x & -> & Hx). exists rid, x.
    split; auto. rewrite lookup_insert_ne; [auto|intros ->; congruence].
  - intros x v rid Hx. lk; eauto.
  - auto.
Qed.

Lemma unmap_clear s f pa r dev R i j T r' t :
  inv s -> caps s !! f = Some (CFrame pa r dev (Some (R, i, j))) ->
  rootent s R i = Some T -> leafent s T j = Some (pa, r') ->
  (∀ e, In e t -> In e (iotlb s) /\
     ∀ d, doms s !! R = Some d -> ~ (t_dom e = d /\ t_i e = i /\ t_j e = j)) ->
  inv (set_tlb (set_leaf (set_caps s (<[f := CFrame pa r dev None]> (caps s)))
                         (upd2 (leafent s) T j None)) t).
Proof.
  intros Hi Ef ET EL Ht. pose proof Hi as Hi0. dinv Hi. constructor; simpl.
  - eapply mem_replace; eauto; simpl; auto.
  - intros x R' d' Hx. lk; eauto.
  - intros R' d' H. eapply ex_keep; eauto; discriminate.
  - auto.
  - auto.
  - auto.
  - intros e He. destruct (Ht e He) as [He' Hn].
    destruct (Htlb e He') as (R' & H1 & H2). exists R'. split; auto.
    unfold walk, upd2 in *. simpl. destruct (rootent s R' (t_i e)) as [T'|] eqn:ET'; try discriminate.
    destruct (Nat.eqb_spec T' T) as [->|], (Nat.eqb_spec (t_j e) j) as [Hj|]; simpl; auto.
    destruct (root_unique _ _ _ _ _ _ Hi0 ET' ET) as [-> Hi'].
    exfalso. eapply (Hn _ H1); auto.
  - intros R' d' i' j' pa' r1 HR' Hw. unfold walk, upd2 in Hw. simpl in Hw.
    destruct (rootent s R' i') as [T'|] eqn:ET'; try discriminate.
    destruct (Nat.eqb_spec T' T) as [->|], (Nat.eqb_spec j' j) as [->|]; simpl in Hw;
      try discriminate.
    all: edestruct Hjust as (x & r2 & Hx & Hr); [exact HR'|unfold walk; rewrite ET'; exact Hw|];
      exists x, r2; split; [|exact Hr]; rewrite lookup_insert_ne; [exact Hx|intros ->].
    all: rewrite Ef in Hx; injection Hx; intros; subst; congruence.
  - intros R' i' T' H2. eapply ex_keep; eauto; discriminate.
  - intros T' j' v' Hl. unfold upd2 in Hl.
    destruct (Nat.eqb_spec T' T) as [->|], (Nat.eqb_spec j' j) as [->|]; simpl in Hl;
      try discriminate.
    all: eapply ex_iopt_keep; [exact Ef|congruence|eauto].
  - intros x1 x2 T' m1 m2 H1 H2. lk; eauto.
  - intros v e He. destruct (Hirte _ _ He) as (rid & x & -> & Hx). exists rid, x.
    split; auto. rewrite lookup_insert_ne; [auto|intros ->; congruence].
  - intros x v rid Hx. lk; eauto.
  - auto.
Qed.

Lemma T1_unmap_frame s f : inv s -> inv (unmap_frame s f).
Proof.
  intros Hi. unfold unmap_frame.
  destruct (caps s !! f) as [[| | | | | |pa r dev [[[R i] j]|]| | | | |]|] eqn:Ef; auto.
  destruct (rootent s R i) as [T|] eqn:ET.
  2: { eapply unmap_keep; eauto. unfold walk. rewrite ET. discriminate. }
  destruct (leafent s T j) as [[pa' r']|] eqn:EL.
  2: { eapply unmap_keep; eauto. unfold walk. rewrite ET, EL. discriminate. }
  destruct (Nat.eq_dec pa pa') as [<-|Hne].
  2: { eapply unmap_keep; eauto. unfold walk. rewrite ET, EL. congruence. }
  unfold dom_of. destruct (doms s !! R) as [d|] eqn:ER.
  - eapply (unmap_clear s f pa r dev R i j T r'); eauto.
    intros e He. simpl in He. apply in_filter in He as [Hn He]. split; auto.
    intros d' Hd'. congruence.
  - eapply (unmap_clear s f pa r dev R i j T r' (iotlb s)); eauto.
    intros e He. split; auto. intros d' Hd'. congruence.
Qed.

Lemma unmap_table_gen s t T R i re tl :
  inv s -> caps s !! t = Some (CIoPageTable T (Some (R, i))) ->
  (∀ R' i', re R' i' = rootent s R' i' \/ (R' = R /\ i' = i /\ re R' i' = None)) ->
  (∀ R' i', re R' i' <> Some T) ->
  (∀ e, In e tl -> In e (iotlb s) /\
     ∀ d, doms s !! R = Some d -> ~ (t_dom e = d /\ t_i e = i)) ->
  inv (set_tlb (set_leaf (set_root (set_caps s (<[t := CIoPageTable T None]> (caps s))) re)
                         (upd (leafent s) T (fun _ => None))) tl).
Proof.
  intros Hi Et Hre HnT Ht. pose proof Hi as Hi0. dinv Hi.
  assert (Hw : ∀ R' i' j' v, walk (set_leaf (set_root s re) (upd (leafent s) T (fun _ => None)))
                                  R' i' j' = Some v ->
                             walk s R' i' j' = Some v).
  { intros R' i' j' v. unfold walk, upd. simpl.
    destruct (Hre R' i') as [->|(-> & -> & ->)]; [|discriminate].
    destruct (rootent s R' i') as [T'|]; [|discriminate].
    destruct (Nat.eqb_spec T' T); [discriminate|auto]. }
  constructor; simpl.
  - eapply mem_replace; eauto; simpl; auto.
  - intros x R' d' Hx. lk; eauto.
  - intros R' d' H. eapply ex_keep; eauto; discriminate.
  - auto.
  - auto.
  - auto.
  - intros e He. destruct (Ht e He) as [He' Hn].
    destruct (Htlb e He') as (R' & H1 & H2). exists R'. split; auto.
    unfold walk, upd in *. simpl.
    destruct (Hre R' (t_i e)) as [E|(-> & Hti & Hr)].
    + rewrite E. destruct (rootent s R' (t_i e)) as [T'|] eqn:ET'; [|discriminate].
      destruct (Nat.eqb_spec T' T) as [->|]; auto.
      exfalso. apply (HnT R' (t_i e)). exact E.
    + exfalso. eapply (Hn _ H1); auto.
  - intros R' d' i' j' pa' r1 HR' Hw'. apply Hw in Hw'.
    edestruct Hjust as (x & r2 & Hx & Hr); [exact HR'|exact Hw'|].
    exists x, r2; split; [|exact Hr]. rewrite lookup_insert_ne; [exact Hx|intros ->; congruence].
  - intros R' i' T' H2. destruct (Hre R' i') as [E|(_ & _ & E)]; [|congruence].
    rewrite E in H2. destruct (Hroot _ _ _ H2) as [x Hx]. exists x.
    rewrite lookup_insert_ne; [exact Hx|intros ->]. rewrite Hx in Et. injection Et as <- <- <-.
    eapply HnT. rewrite E. eauto.
  - intros T' j' v' Hl. unfold upd in Hl. destruct (Nat.eqb_spec T' T); [discriminate|].
    eapply ex_iopt_keep; [exact Et|congruence|eauto].
  - intros x1 x2 T' m1 m2 H1 H2. lk; eauto.
  - intros v e He. destruct (Hirte _ _ He) as (rid & x & -> & Hx). exists rid, x.
    split; auto. rewrite lookup_insert_ne; [auto|intros ->; congruence].
  - intros x v rid Hx. lk; eauto.
  - auto.
Qed.

Lemma T1_unmap_table s t : inv s -> inv (unmap_table s t).
Proof.
  intros Hi. unfold unmap_table.
  destruct (caps s !! t) as [[| | | | | | | |T [[R i]|]| | |]|] eqn:Et; auto.
  pose proof Hi as Hi0. dinv Hi0.
  assert (Hno : ∀ R' i', (R', i') <> (R, i) -> rootent s R' i' <> Some T).
  { intros R' i' Hne HT. destruct (Hroot _ _ _ HT) as [x Hx].
    rewrite (Hiopt1 _ _ _ _ _ Hx Et) in Hx. rewrite Et in Hx. congruence. }
  set (tl := match dom_of s R with
             | Some d => filter (fun e => ~ (t_dom e = d /\ t_i e = i)) (iotlb s)
             | None => iotlb s end).
  assert (Htl : ∀ e, In e tl -> In e (iotlb s) /\
                ∀ d, doms s !! R = Some d -> ~ (t_dom e = d /\ t_i e = i)).
  { intros e. unfold tl, dom_of. destruct (doms s !! R) as [d|].
    - rewrite in_filter. intros [Hn He]. split; auto. intros d' [=<-]. auto.
    - intros He. split; auto. discriminate. }
  destruct (rootent s R i) as [T'|] eqn:ET; [destruct (Nat.eq_dec T T') as [<-|HTT]|].
  - assert (Hfin : inv (set_tlb (set_leaf (set_root (set_caps s (<[t := CIoPageTable T None]> (caps s)))
                         (upd2 (rootent s) R i None)) (upd (leafent s) T (fun _ => None))) tl)).
    { apply (unmap_table_gen s t T R i); auto.
      - intros R' i'. unfold upd2. destruct (Nat.eqb_spec R' R), (Nat.eqb_spec i' i); simpl; auto.
      - intros R' i'. unfold upd2. destruct (Nat.eqb_spec R' R) as [->|], (Nat.eqb_spec i' i) as [->|];
          simpl; try discriminate; apply Hno; congruence. }
    unfold tl, dom_of in *. destruct (doms s !! R); exact Hfin.
  - assert (Hfin : inv (set_tlb (set_leaf (set_root (set_caps s (<[t := CIoPageTable T None]> (caps s)))
                         (rootent s)) (upd (leafent s) T (fun _ => None))) tl)).
    { apply (unmap_table_gen s t T R i); auto.
      intros R' i'. destruct (decide ((R', i') = (R, i))) as [[=-> ->]|Hne]; [congruence|].
      apply Hno; auto. }
    unfold tl, dom_of in *. destruct (doms s !! R); exact Hfin.
  - assert (Hfin : inv (set_tlb (set_leaf (set_root (set_caps s (<[t := CIoPageTable T None]> (caps s)))
                         (rootent s)) (upd (leafent s) T (fun _ => None))) tl)).
    { apply (unmap_table_gen s t T R i); auto.
      intros R' i'. destruct (decide ((R', i') = (R, i))) as [[=-> ->]|Hne]; [congruence|].
      apply Hno; auto. }
    unfold tl, dom_of in *. destruct (doms s !! R); exact Hfin.
Qed.

Lemma T1_get_msi s ctl pci dst v : inv s -> inv (get_msi s ctl pci dst v).
Proof.
  intros Hi. unfold get_msi. dgoal Hi.
  match goal with H : caps s !! ctl = _ |- _ => rename H into Ec end.
  match goal with H : caps s !! pci = _ |- _ => rename H into Ep end.
  match goal with H : caps s !! dst = _ |- _ => rename H into Ed end.
  match goal with H : irte s !! v = _ |- _ => rename H into Ev end.
  apply inv_inval_irte. dinv Hi. constructor; simpl.
  - eapply mem_insert; eauto; simpl; auto. congruence.
  - intros x R' d' Hx. lk; eauto.
  - intros R' d' H. eapply ex_ins; eauto. congruence.
  - auto.
  - auto.
  - auto.
  - auto.
  - intros R' d' i' j' pa' r1 HR' Hw. eapply ex_frame_ins; eauto. congruence.
  - intros R' i' T' H2. eapply ex_ins; eauto. congruence.
  - intros T' j' v' Hl. eapply ex_iopt_ins; [congruence|eauto].
  - intros x1 x2 T' m1 m2 H1 H2. lk; eauto.
  - intros v' e He. destruct (decide (v' = v)) as [->|Hne].
    + rewrite lookup_insert in He. injection He as <-. exists rid, dst.
      rewrite lookup_insert. auto.
    + rewrite lookup_insert_ne in He by congruence.
      destruct (Hirte _ _ He) as (rid' & x & -> & Hx). exists rid', x.
      split; auto. rewrite lookup_insert_ne; [auto|intros ->; congruence].
  - intros x v' rid' Hx. lk.
    + rewrite lookup_insert. auto.
    + pose proof (Hmsi _ _ _ Hx). rewrite lookup_insert_ne; auto. congruence.
  - intros v' e He. pose proof (Hirtec _ _ He). rewrite lookup_insert_ne; auto. congruence.
Qed.
