(** Replay: hardware steps as a checked function, so extracted Coq can replay traces. *)
From Iso Require Export Init.

(** The replay (proofs/replay) runs recorded traces of system calls, Revoke units and
    hardware steps through the extracted [step] and [hw_next]. [hw_next] computes the
    state after a hardware step from its witnesses, or refuses it when its premise
    does not hold; [replay_inv] says every state a replay passes through is reachable
    from [init], so the invariant and T2-T9 hold in it. *)

Global Instance tlbe_eq_dec : EqDecision tlbe.
Proof. solve_decision. Defined.
Global Instance In_decision {A} `{EqDecision A} (x : A) (l : list A) : Decision (In x l) :=
  in_dec (λ a b, decide (a = b)) x l.

(** A hardware step with its witnesses (the constructors of [hw]). *)
Inductive hwop :=
| FillTlb (rid R d i j pa : nat) (r : rights)
| FillCtx (rid : nat) (e : paddr * nat)
| FillIrte (v : nat) (e : option nat)
| Evict (t : list tlbe) (cc : list (nat * (paddr * nat))) (ic : list (nat * option nat))
| Dma (rid i j : nat) (w : rights) (pa : paddr)
| DmaFault (rid i j : nat) (w : rights)
| Msi (rid v : nat).

(** The contexts a device's DMA may use: its entry and every cached copy. *)
Definition views (s : state) (rid : nat) : list (paddr * nat) :=
  match ctx s !! rid with Some e => [e] | None => [] end ++
  map snd (filter (λ x, x.1 = rid) (ctxc s)).

Lemma views_spec s rid e : In e (views s rid) <-> ctx_view s rid e.
Proof.
  unfold views, ctx_view. rewrite in_app_iff, in_map_iff. split.
  - intros [H|((rid', e') & <- & Hin)].
    + destruct (ctx s !! rid) eqn:E; [|destruct H]. destruct H as [<-|[]]. auto.
    + apply elem_of_list_In, elem_of_list_filter in Hin as [Hr Hin]. simpl in *. subst.
      right. apply elem_of_list_In. exact Hin.
  - intros [H|H].
    + left. rewrite H. left. reflexivity.
    + right. exists (rid, e). split; [reflexivity|].
      apply elem_of_list_In, elem_of_list_filter. split; [reflexivity|].
      apply elem_of_list_In. exact H.
Qed.

(** A translation of the DMA at (i, j) with rights [w] through context (R, d): an IOTLB
    entry of d or the walk of R. *)
Definition tlb_hit (s : state) (d i j : nat) (w : rights) (pa : paddr) (e : tlbe) : bool :=
  bool_decide (e = Tlbe d i j pa (t_r e)) && rsub w (t_r e).
Definition walk_hit (s : state) (R i j : nat) (w : rights) (pa : paddr) : bool :=
  match walk s R i j with Some (pa', r) => Nat.eqb pa pa' && rsub w r | None => false end.
Definition dma_okb (s : state) (rid i j : nat) (w : rights) (pa : paddr) : bool :=
  existsb (λ '(R, d), existsb (tlb_hit s d i j w pa) (iotlb s) || walk_hit s R i j w pa)
          (views s rid).
(** No translation at all: no IOTLB entry of a context's domain at (i, j) and no walk
    with rights covering [w]. *)
Definition dma_failb (s : state) (rid i j : nat) (w : rights) : bool :=
  forallb (λ '(R, d),
    forallb (λ e, negb (Nat.eqb (t_dom e) d && Nat.eqb (t_i e) i && Nat.eqb (t_j e) j
                        && rsub w (t_r e))) (iotlb s) &&
    match walk s R i j with Some (_, r) => negb (rsub w r) | None => true end)
    (views s rid).
Definition msi_okb (s : state) (rid v : nat) : bool :=
  existsb (λ e, bool_decide (e = None \/ e = Some rid))
    (match irte s !! v with Some e => [e] | None => [] end ++
     map snd (filter (λ x, x.1 = v) (irtec s))).

Definition subsetb {A} `{EqDecision A} (l m : list A) : bool :=
  forallb (λ x, bool_decide (In x m)) l.

(** The state after a hardware step, or None when its premise fails. *)
Definition hw_next (s : state) (h : hwop) : option state :=
  match h with
  | FillTlb rid R d i j pa r =>
      if bool_decide (In (R, d) (views s rid)) && bool_decide (walk s R i j = Some (pa, r))
      then Some (set_tlb s (Tlbe d i j pa r :: iotlb s)) else None
  | FillCtx rid e =>
      if bool_decide (ctx s !! rid = Some e) then Some (set_ctx s (ctx s) ((rid, e) :: ctxc s))
      else None
  | FillIrte v e =>
      if bool_decide (irte s !! v = Some e) then Some (set_irte s (irte s) ((v, e) :: irtec s))
      else None
  | Evict t cc ic =>
      if subsetb t (iotlb s) && subsetb cc (ctxc s) && subsetb ic (irtec s)
      then Some (set_irte (set_ctx (set_tlb s t) (ctx s) cc) (irte s) ic) else None
  | Dma rid i j w pa => if dma_okb s rid i j w pa then Some s else None
  | DmaFault rid i j w => if dma_failb s rid i j w then Some (record_fault s rid i j) else None
  | Msi rid v => if msi_okb s rid v then Some s else None
  end.

Lemma subsetb_spec {A} `{EqDecision A} (l m : list A) :
  subsetb l m = true -> ∀ x, In x l -> In x m.
Proof.
  unfold subsetb. rewrite forallb_forall. intros H x Hx.
  specialize (H x Hx). apply bool_decide_eq_true in H. exact H.
Qed.

Lemma dma_okb_sound s rid i j w pa : dma_okb s rid i j w pa = true -> dma_ok s rid i j w pa.
Proof.
  unfold dma_okb. rewrite existsb_exists. intros [[R d] [Hv H]].
  apply views_spec in Hv. exists R, d. split; [exact Hv|].
  apply orb_true_iff in H as [H|H].
  - apply existsb_exists in H as [e [He H]]. unfold tlb_hit in H.
    apply andb_true_iff in H as [Heq Hr]. apply bool_decide_eq_true in Heq.
    left. exists (t_r e). rewrite <- Heq. auto.
  - unfold walk_hit in H. destruct (walk s R i j) as [[pa' r]|] eqn:E; [|discriminate].
    apply andb_true_iff in H as [Hp Hr]. apply Nat.eqb_eq in Hp. subst.
    right. exists r. auto.
Qed.

Lemma dma_failb_sound s rid i j w : dma_failb s rid i j w = true -> ∀ pa, ~ dma_ok s rid i j w pa.
Proof.
  unfold dma_failb. rewrite forallb_forall. intros H pa (R & d & Hv & Hd).
  apply views_spec in Hv. specialize (H _ Hv). simpl in H.
  apply andb_true_iff in H as [Ht Hw]. rewrite forallb_forall in Ht.
  destruct Hd as [(r & Hin & Hr)|(r & Hwk & Hr)].
  - specialize (Ht _ Hin). simpl in Ht. rewrite !Nat.eqb_refl, Hr in Ht. discriminate.
  - rewrite Hwk, Hr in Hw. discriminate.
Qed.

Lemma msi_okb_sound s rid v : msi_okb s rid v = true -> msi_ok s rid v.
Proof.
  unfold msi_okb. rewrite existsb_exists. intros [e [Hin H]].
  apply bool_decide_eq_true in H. exists e. split; [|exact H].
  apply in_app_iff in Hin as [Hin|Hin].
  - left. destruct (irte s !! v); [|destruct Hin]. destruct Hin as [<-|[]]. reflexivity.
  - right. apply in_map_iff in Hin as ([v' e'] & <- & Hin).
    apply elem_of_list_In, elem_of_list_filter in Hin as [Hv Hin]. simpl in *. subst.
    apply elem_of_list_In. exact Hin.
Qed.

(** Every step [hw_next] takes is a step of the hardware relation [hw]. *)
Theorem hw_next_sound s h s' : hw_next s h = Some s' -> hw s s'.
Proof.
  destruct h; simpl; intros H.
  - destruct (bool_decide (In (R, d) (views s rid))) eqn:E1; [|discriminate].
    destruct (bool_decide (walk s R i j = Some (pa, r))) eqn:E2; [|discriminate].
    apply bool_decide_eq_true in E1, E2. injection H as <-.
    apply views_spec in E1. eapply HwFillTlb; eauto.
  - case_bool_decide; [|discriminate]. injection H as <-. apply HwFillCtx. assumption.
  - case_bool_decide; [|discriminate]. injection H as <-. apply HwFillIrte. assumption.
  - destruct (subsetb t (iotlb s)) eqn:E1; [|discriminate].
    destruct (subsetb cc (ctxc s)) eqn:E2; [|discriminate].
    destruct (subsetb ic (irtec s)) eqn:E3; [|discriminate]. injection H as <-.
    apply HwEvict; eapply subsetb_spec; eauto.
  - destruct (dma_okb s rid i j w pa) eqn:E; [|discriminate]. injection H as <-.
    apply (HwDma s rid i j w pa), dma_okb_sound. exact E.
  - destruct (dma_failb s rid i j w) eqn:E; [|discriminate]. injection H as <-.
    apply (HwDmaFault s rid i j w), dma_failb_sound. exact E.
  - destruct (msi_okb s rid v) eqn:E; [|discriminate]. injection H as <-.
    apply (HwMsi s rid v), msi_okb_sound. exact E.
Qed.

(** One event of a trace: a system call or Revoke unit, or a hardware step. *)
Inductive event := EStep (o : op) | EHw (h : hwop).

Definition replay_event (s : state) (e : event) : option state :=
  match e with EStep o => Some (step s o) | EHw h => hw_next s h end.

(** Every state a replay from [init] passes through is reachable, so it satisfies the
    invariant (T1) and every theorem applies to it. *)
Theorem replay_inv s e s' :
  reachable init s -> replay_event s e = Some s' -> reachable init s' /\ inv s'.
Proof.
  intros Hr He. assert (reachable init s') as Hr'.
  { destruct e as [o|h]; simpl in He.
    - injection He as <-. apply reach_step. exact Hr.
    - apply (reach_hw init s s' Hr). apply (hw_next_sound s h). exact He. }
  split; [exact Hr'|]. apply init_reachable_inv. exact Hr'.
Qed.

(** Observations the replay compares: the finite maps as lists, the total functions
    (root entries, leaves, fault queues) on the pages, indices and domains given. *)
Definition obs_caps (s : state) : list (slot * cap) := map_to_list (caps s).
Definition obs_parent (s : state) : list (slot * slot) := map_to_list (parent s).
Definition obs_orig (s : state) : list slot := elements (orig s).
Definition obs_doms (s : state) : list (paddr * nat) := map_to_list (doms s).
Definition obs_ctx (s : state) : list (nat * (paddr * nat)) := map_to_list (ctx s).
Definition obs_irte (s : state) : list (nat * option nat) := map_to_list (irte s).
Definition obs_root (s : state) (pages idx : list nat) : list (paddr * nat * paddr) :=
  concat (map (λ R, concat (map (λ i,
    match rootent s R i with Some T => [(R, i, T)] | None => [] end) idx)) pages).
Definition obs_leaf (s : state) (pages idx : list nat) : list (paddr * nat * (paddr * rights)) :=
  concat (map (λ T, concat (map (λ j,
    match leafent s T j with Some v => [(T, j, v)] | None => [] end) idx)) pages).
Definition obs_faults (s : state) (ds : list nat) : list (nat * list frec) :=
  concat (map (λ d, match faults s d with [] => [] | q => [(d, q)] end) ds).
