(** T5: new translations come only from MapIo, new context entries only from Assign. *)
From Iso Require Export T4.

(** A translation the IOMMU can use: a walk of a live IOSpace. *)
Definition trans (s : state) (R i j : nat) (v : paddr * rights) : Prop :=
  ∃ d, doms s !! R = Some d /\ walk s R i j = Some v.

(** [s'] has no live IOSpace, root entry, leaf or context entry that [s] lacks. *)
Definition shrinks (s s' : state) : Prop :=
  (∀ R d, doms s' !! R = Some d -> doms s !! R = Some d) /\
  (∀ R i T, rootent s' R i = Some T -> rootent s R i = Some T) /\
  (∀ T j v, leafent s' T j = Some v -> leafent s T j = Some v) /\
  (∀ rid e, ctx s' !! rid = Some e -> ctx s !! rid = Some e).

Lemma shrinks_refl s : shrinks s s.
Proof. repeat split; auto. Qed.
Lemma shrinks_trans s1 s2 s3 : shrinks s1 s2 -> shrinks s2 s3 -> shrinks s1 s3.
Proof. intros (A1 & B1 & C1 & D1) (A2 & B2 & C2 & D2). repeat split; eauto. Qed.
Lemma shrinks_trans_ok s s' R i j v : shrinks s s' -> trans s' R i j v -> trans s R i j v.
Proof.
  intros (A & B & C & _) (d & HR & Hw). exists d. split; auto. unfold walk in *.
  destruct (rootent s' R i) as [T|] eqn:E; [|discriminate]. rewrite (B _ _ _ E). auto.
Qed.

Lemma shrinks_unmap_frame s x : shrinks s (unmap_frame s x).
Proof.
  unfold unmap_frame. repeat case_match; try apply shrinks_refl; subst;
  repeat split; simpl; auto; intros T' j' v' Hl; unfold upd2 in Hl;
  destruct (_ && _); congruence.
Qed.

Lemma shrinks_unmap_table s x : shrinks s (unmap_table s x).
Proof.
  unfold unmap_table. repeat case_match; try apply shrinks_refl; subst;
  repeat split; simpl; auto; intros; unfold upd2, upd in *;
  repeat case_match; congruence.
Qed.

Lemma shrinks_delete s x : shrinks s (delete_slot s x).
Proof.
  unfold delete_slot. destruct (caps s !! x) as [c|]; [|apply shrinks_refl].
  assert (H1 : shrinks s (match c with
                | CFrame _ _ _ (Some _) => unmap_frame s x
                | CIoPageTable _ (Some _) => unmap_table s x
                | _ => s end)).
  { repeat case_match; auto using shrinks_refl, shrinks_unmap_frame, shrinks_unmap_table. }
  set (s1 := match c with
             | CFrame _ _ _ (Some _) => unmap_frame s x
             | CIoPageTable _ (Some _) => unmap_table s x
             | _ => s end) in *.
  assert (H2 : shrinks s1 (remove_slot s1 x)) by (repeat split; auto).
  assert (H3 : ∀ R d, shrinks (remove_slot s1 x) (destroy_iospace (remove_slot s1 x) R d)).
  { intros R d. repeat split; simpl; auto.
    - intros R' d' H. apply lookup_delete_Some in H. tauto.
    - intros rid e H. apply map_filter_lookup_Some in H. tauto. }
  assert (H4 : ∀ v, shrinks (remove_slot s1 x) (release_msi (remove_slot s1 x) v))
    by (intros; repeat split; auto).
  destruct c; try case_match; eauto using shrinks_trans.
Qed.

(** Operations that touch neither tables, live IOSpaces nor context entries. *)
Lemma same_tables_copy s a b r :
  doms (copy s a b r) = doms s /\ rootent (copy s a b r) = rootent s /\
  leafent (copy s a b r) = leafent s /\ ctx (copy s a b r) = ctx s.
Proof. unfold copy. repeat case_match; auto. Qed.
Lemma same_tables_msi s c p d v :
  doms (get_msi s c p d v) = doms s /\ rootent (get_msi s c p d v) = rootent s /\
  leafent (get_msi s c p d v) = leafent s /\ ctx (get_msi s c p d v) = ctx s.
Proof. unfold get_msi. repeat case_match; auto. Qed.
Lemma same_tables_fault s io :
  doms (next_fault s io) = doms s /\ rootent (next_fault s io) = rootent s /\
  leafent (next_fault s io) = leafent s /\ ctx (next_fault s io) = ctx s.
Proof. unfold next_fault. repeat case_match; auto. Qed.
Lemma same_shrinks s s' :
  doms s' = doms s /\ rootent s' = rootent s /\ leafent s' = leafent s /\ ctx s' = ctx s ->
  shrinks s s'.
Proof. intros (A & B & C & D). repeat split; congruence. Qed.

Lemma same3_trans s s' R i j v :
  doms s' = doms s -> rootent s' = rootent s -> leafent s' = leafent s ->
  trans s' R i j v -> trans s R i j v.
Proof. intros A B C. unfold trans, walk. rewrite A, B, C. auto. Qed.

Lemma retype_trans s u k dst d R i j v :
  inv s -> trans (retype s u k dst d) R i j v -> trans s R i j v.
Proof.
  intros Hi Ht. unfold retype in Ht.
  destruct (caps s !! u) as [[b sz dev wm| | | | | | | | | | |]|] eqn:Eu; auto.
  destruct (caps s !! dst) eqn:Ed; auto.
  set (wm0 := if has_children s u then wm else 0) in *.
  case_bool_decide as Hc; auto. destruct Hc as (Hlt & _).
  assert (Hfr : ∀ x c0, caps s !! x = Some c0 -> ~ covers c0 (b + wm0)).
  { intros x c0 Hx. eapply retype_fresh; eauto. apply Hi. }
  assert (Hpl : doms s !! (b + wm0) = None).
  { destruct (doms s !! (b + wm0)) as [e|] eqn:E; auto. destruct (i_doms _ Hi _ _ E) as [x Hx].
    exfalso. eapply Hfr; eauto. eexists; reflexivity. }
  assert (Hnr : ∀ R' i', rootent s R' i' <> Some (b + wm0)).
  { intros R' i' E. destruct (i_root _ Hi _ _ _ E) as [x Hx]. eapply Hfr; eauto. eexists; reflexivity. }
  destruct Ht as (d' & HR & Hw).
  assert (Hw' : R <> b + wm0 -> walk s R i j = Some v).
  { intros Hne. rewrite <- Hw. symmetry. destruct k; eapply walk_zero; simpl; eauto. }
  assert (Hz : walk s R i j = Some v -> R <> b + wm0 -> trans s R i j v -> trans s R i j v) by auto.
  destruct (decide (R = b + wm0)) as [->|Hne].
  - exfalso. revert Hw. destruct k; unfold walk; simpl; unfold upd; rewrite Nat.eqb_refl; discriminate.
  - exists d'. split; [|auto]. destruct k; simpl in HR; auto.
    rewrite lookup_insert_ne in HR; auto.
Qed.

Lemma map_table_trans s t io i0 R i j v :
  inv s -> trans (map_table s t io i0) R i j v -> trans s R i j v.
Proof.
  intros Hi Ht. unfold map_table in Ht.
  destruct (caps s !! t) as [[| | | | | | | |T [m|]| | |]|] eqn:Et; auto.
  destruct (caps s !! io) as [[| | | | | | |R0 d0| | | |]|] eqn:Eio; auto.
  destruct (rootent s R0 i0) eqn:E0; auto.
  destruct Ht as (d & HR & Hw). exists d. split; auto. unfold walk, upd2 in *. simpl in Hw.
  destruct (Nat.eqb_spec R R0) as [->|], (Nat.eqb_spec i i0) as [->|]; simpl in Hw; auto.
  exfalso. destruct (i_empty _ Hi _ _ _ Hw) as (x & m & Hx).
  pose proof (i_iopt1 _ Hi _ _ _ _ _ Hx Et) as ->. congruence.
Qed.

Lemma map_frame_trans s f io i0 j0 r R i j v :
  inv s -> trans (map_frame s f io i0 j0 r) R i j v -> ~ trans s R i j v ->
  ∃ pa r0 d, i = i0 /\ j = j0 /\ caps s !! f = Some (CFrame pa r0 false None) /\
    caps s !! io = Some (CIoSpace R d) /\ v = (pa, r) /\ rsub r r0 = true.
Proof.
  intros Hi Ht Hn. unfold map_frame in Ht.
  repeat match type of Ht with
  | trans (match ?x with _ => _ end) _ _ _ _ => let E := fresh "E" in destruct x eqn:E
  | trans (if ?b then _ else _) _ _ _ _ => let E := fresh "E" in destruct b eqn:E
  end; try (exfalso; apply Hn, Ht).
  subst. rename root into R0, dom into d0, n into T.
  match goal with H : caps s !! f = _ |- _ => rename H into Ef end.
  match goal with H : caps s !! io = _ |- _ => rename H into Eio end.
  match goal with H : rootent s R0 i0 = _ |- _ => rename H into ET end.
  match goal with H : rsub _ _ && _ = true |- _ => rename H into Er end.
  destruct Ht as (d & HR & Hw). unfold walk, upd2 in Hw. simpl in Hw.
  destruct (rootent s R i) as [T'|] eqn:ET'; [|discriminate].
  destruct (Nat.eqb_spec T' T) as [->|], (Nat.eqb_spec j j0) as [->|]; simpl in Hw.
  - destruct (root_unique _ _ _ _ _ _ Hi ET' ET) as [-> ->]. injection Hw as <-.
    apply andb_true_iff in Er as [Er _]. exists pa, r0, d0. repeat split; auto.
  - exfalso. apply Hn. exists d. split; auto. unfold walk. rewrite ET'. auto.
  - exfalso. apply Hn. exists d. split; auto. unfold walk. rewrite ET'. auto.
  - exfalso. apply Hn. exists d. split; auto. unfold walk. rewrite ET'. auto.
Qed.

(** T5 (translations): a translation of a live IOSpace that a system call adds (one
    the IOMMU could not use before) was added by FrameMapIo at that IOVA, by a caller
    holding an unmapped RAM Frame cap to the page (with at least the mapped rights)
    and the IOSpace's cap. IoPageTableMap installs only empty tables; the hardware
    adds no translation at all. *)
Theorem T5_translation s0 s o R i j v :
  inv s0 -> reachable s0 s -> trans (step s o) R i j v -> ~ trans s R i j v ->
  ∃ f io r pa r0 d, o = MapIo f io i j r /\ caps s !! f = Some (CFrame pa r0 false None) /\
    caps s !! io = Some (CIoSpace R d) /\ v = (pa, r) /\ rsub r r0 = true.
Proof.
  intros H0 Hr Ht Hn. pose proof (T1_invariant _ _ H0 Hr) as Hi.
  destruct o; simpl in Ht.
  5: { destruct (map_frame_trans _ _ _ _ _ _ _ _ _ _ Hi Ht Hn) as (pa & r0 & d & -> & -> & A & B & -> & C).
       exists f, io, r, pa, r0, d. auto. }
  all: exfalso; apply Hn.
  - eapply retype_trans; eauto.
  - destruct (same_tables_copy s src dst r) as (A & B & C & _). eapply same3_trans; eauto.
  - eapply shrinks_trans_ok; [apply shrinks_delete|eauto].
  - destruct (_ && _); auto. eapply shrinks_trans_ok; [apply shrinks_delete|eauto].
  - revert Ht. repeat case_match; auto. apply shrinks_trans_ok, shrinks_unmap_frame.
  - eapply map_table_trans; eauto.
  - eapply shrinks_trans_ok; [apply shrinks_unmap_table|eauto].
  - eapply same3_trans; [| | |exact Ht]; unfold assign; repeat case_match; reflexivity.
  - eapply same3_trans; [| | |exact Ht]; unfold unassign; repeat case_match; reflexivity.
  - destruct (same_tables_msi s ctl pci dst v0) as (A & B & C & _). eapply same3_trans; eauto.
  - destruct (same_tables_fault s io) as (A & B & C & _). eapply same3_trans; eauto.
Qed.

(** T5 (context entries): a context entry a system call adds was added by
    IoSpaceAssign, by a caller holding the IOSpace cap and the device's PciDevice cap. *)
Theorem T5_context s0 s o rid e :
  inv s0 -> reachable s0 s -> ctx (step s o) !! rid = Some e -> ctx s !! rid <> Some e ->
  ∃ io pci R d, o = Assign io pci /\ caps s !! io = Some (CIoSpace R d) /\
    caps s !! pci = Some (CPciDevice rid) /\ e = (R, d).
Proof.
  intros H0 Hr Hc Hn. destruct o; simpl in Hc.
  9: { unfold assign in Hc.
       destruct (caps s !! io) as [[| | | | | | |R d| | | |]|] eqn:Eio; try congruence.
       destruct (caps s !! pci) as [[| | | | | | | | |rid0| |]|] eqn:Ep; try congruence.
       destruct (ctx s !! rid0) eqn:Ec; try congruence. simpl in Hc.
       destruct (decide (rid = rid0)) as [->|Hne].
       - rewrite lookup_insert in Hc. injection Hc as <-. exists io, pci, R, d. auto.
       - rewrite lookup_insert_ne in Hc by congruence. congruence. }
  all: exfalso; apply Hn.
  all: try (revert Hc; unfold retype, copy, map_frame, map_table, get_msi, next_fault;
            repeat case_match; simpl; auto; fail).
  - eapply shrinks_delete; eauto.
  - destruct (_ && _); auto. eapply shrinks_delete; eauto.
  - revert Hc. repeat case_match; auto. apply shrinks_unmap_frame.
  - eapply shrinks_unmap_table; eauto.
  - revert Hc. unfold unassign. repeat case_match; simpl; auto.
    intros Hl. apply lookup_delete_Some in Hl. tauto.
Qed.
