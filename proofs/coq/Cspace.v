(** Cspace: slots inside CNode and TCB objects, Delete, and TCB Configure's slot update. *)
From Iso Require Export Replay.

(** A second layer of the model, beside the VT-d one (which numbers slots globally):
    every slot lives in an object. [home s x] is the page of the CNode or TCB object
    that holds slot [x], or 0 for the boot CNode, which is never deleted. A slot in an
    object that no cap names any more cannot be reached, so it must be empty: that is
    what issue 9's hole 2 broke (TcbConfigure deleted the last cap to the CNode holding
    its own source slot, then copied from the emptied slot, linking a cap to it).

    What the kernel's Delete of the last cap to a CNode or TCB does (a Zombie that
    deletes the object's slots one per preemption unit) is modelled by refusing that
    Delete until the object's slots are empty: a user reaches the same states by
    deleting them first, which is all the kernel's Zombie loop does between its units. *)

Inductive ccap := CcCNode (pa : nat) | CcTcb (pa : nat) | CcFrame (pa : nat)
                | CcEndpoint (pa : nat).

(** The object a cap names that holds slots (CNode or TCB), if any. *)
Definition container (c : ccap) : option nat :=
  match c with CcCNode pa | CcTcb pa => Some pa | _ => None end.

Record cstate := CState {
  cslots : gmap nat ccap;   (** slot -> cap *)
  cpar : gmap nat nat;      (** derivation tree: child slot -> parent slot *)
  home : nat -> nat         (** the page of the object holding each slot (0: boot CNode) *)
}.

Global Instance ccap_eq_dec : EqDecision ccap.
Proof. solve_decision. Defined.

(** Some slot other than [x] holds a cap to the container [p]. *)
Definition other_names (s : cstate) (x p : nat) : Prop :=
  map_Exists (fun y c => y <> x /\ container c = Some p) (cslots s).
(** No slot of the container [p] holds a cap. *)
Definition empty_home (s : cstate) (p : nat) : Prop :=
  map_Forall (fun y _ => home s y <> p) (cslots s).
(** Slot [x] lies in the boot CNode or in an object some cap names. *)
Definition live_home (s : cstate) (x : nat) : Prop :=
  home s x = 0 \/ map_Exists (fun _ c => container c = Some (home s x)) (cslots s).
(** Slot [x] holds the last cap to a CNode or TCB. *)
Definition final_container (s : cstate) (x : nat) : Prop :=
  match cslots s !! x with
  | Some c => match container c with Some p => ~ other_names s x p | None => False end
  | None => False
  end.

Global Instance final_container_dec s x : Decision (final_container s x).
Proof.
  unfold final_container. destruct (cslots s !! x) as [c|]; [|apply _].
  destruct (container c); apply _.
Defined.

(** The slot is emptied; its children become children of its parent ([reparent], as
    the VT-d layer's Delete does). *)
Definition cremove (s : cstate) (x : nat) : cstate :=
  CState (delete x (cslots s)) (reparent (cpar s) x) (home s).

(** Delete: refused (the state is unchanged) only for the last cap to a CNode or TCB
    whose slots are not empty yet (see above). *)
Definition cdelete (s : cstate) (x : nat) : cstate :=
  match cslots s !! x with
  | Some c =>
      match container c with
      | Some p => if bool_decide (other_names s x p \/ empty_home s p) then cremove s x else s
      | None => cremove s x
      end
  | None => s
  end.

(** Copy into an empty slot of a live object; the copy is the source's child. *)
Definition ccopy (s : cstate) (src dst : nat) : cstate :=
  match cslots s !! src, cslots s !! dst with
  | Some c, None =>
      if bool_decide (live_home s dst)
      then CState (<[dst := c]> (cslots s)) (<[dst := src]> (cpar s)) (home s)
      else s
  | _, _ => s
  end.

(** What deleting slot [d] does when it holds the last cap to a CNode or TCB: the
    object's own slots go with it. (The guard of [creplace] keeps TcbConfigure from
    ever getting here; only the hole-2 mutant does.) *)
Definition cascade (s : cstate) (d p : nat) : cstate :=
  CState (filter (fun kv => home s kv.1 <> p) (delete d (cslots s)))
         (filter (fun kv => home s kv.1 <> p) (reparent (cpar s) d)) (home s).

(** TcbConfigure's update of one of the thread's slots [d] from the source slot [src]
    (`cnode::decode_replace` then `cnode::invoke_replace`): refused when [d] holds the
    last cap to a CNode or TCB (seL4's slotCapLongRunningDelete: its deletion could
    empty the source); otherwise [d] is deleted and the source copied in, unless the
    source changed meanwhile (`invoke_copy` links nothing from a slot that changed). *)
Definition replace_refused (s : cstate) (d : nat) : bool :=
  bool_decide (final_container s d).
(** Deleting [d] for the update: its container's slots go with the last cap to it
    ([cascade]; only reached when [replace_refused] does not refuse it). *)
Definition replace_clear (s : cstate) (d : nat) : cstate :=
  match cslots s !! d with
  | Some cd => match container cd with
               | Some p => if bool_decide (other_names s d p) then cremove s d else cascade s d p
               | None => cremove s d
               end
  | None => s
  end.
(** The copy into [d] from [src], which held [c] before the deletion. *)
Definition replace_copy_ok (s1 : cstate) (d src : nat) (c : option ccap) : bool :=
  bool_decide (cslots s1 !! src = c /\ cslots s1 !! d = None /\ live_home s1 d).
Definition creplace (s : cstate) (d src : nat) : cstate :=
  let c := cslots s !! src in
  if replace_refused s d then s
  else
    let s1 := replace_clear s d in
    match c with
    | Some cc =>
        if replace_copy_ok s1 d src c
        then CState (<[d := cc]> (cslots s1)) (<[d := src]> (cpar s1)) (home s1)
        else s1
    | None => s1
    end.

Inductive cop := CCopy (src dst : nat) | CDelete (x : nat) | CReplace (d src : nat).

Definition cstep (s : cstate) (o : cop) : cstate :=
  match o with
  | CCopy src dst => ccopy s src dst
  | CDelete x => cdelete s x
  | CReplace d src => creplace s d src
  end.

(** The invariant of this layer: derivation links name non-empty slots, and every
    non-empty slot lies in the boot CNode or in an object some cap still names. *)
Record cinv (s : cstate) : Prop := {
  ci_tree : ∀ x p, cpar s !! x = Some p -> is_Some (cslots s !! x) /\ is_Some (cslots s !! p);
  ci_acyc : ∀ x, ~ desc (cpar s) x x;
  ci_home : ∀ x c, cslots s !! x = Some c -> live_home s x
}.

(** Every state reachable by system calls of this layer. *)
Inductive creach (s0 : cstate) : cstate -> Prop :=
| cr_refl : creach s0 s0
| cr_step s o : creach s0 s -> creach s0 (cstep s o).

(** * Preservation *)

(** Emptying a slot keeps the invariant when it did not hold the last cap to an object
    whose slots still hold caps. *)
Lemma cinv_remove s x :
  cinv s ->
  (∀ c p, cslots s !! x = Some c -> container c = Some p -> other_names s x p \/ empty_home s p) ->
  cinv (cremove s x).
Proof.
  intros [Ht Ha Hh] Hx.
  assert (Hloop : ∀ y, cpar s !! y <> Some y) by (intros y Hy; apply (Ha y); apply d_base; auto).
  split.
  - simpl. intros y q Hy. pose proof (reparent_ne _ _ _ _ (Hloop x) Hy) as Hqx.
    apply reparent_lookup in Hy as [Hyx [Hc|[Hc Hxq]]].
    + rewrite !lookup_delete_ne by congruence. apply Ht in Hc. tauto.
    + rewrite !lookup_delete_ne by congruence.
      split; [apply (Ht y x Hc)|apply (Ht x q Hxq)].
  - simpl. intros y Hd. eapply Ha. eapply desc_reparent_old; eauto.
  - simpl. intros y c Hy. destruct (decide (y = x)) as [->|Hyx].
    { rewrite lookup_delete in Hy. discriminate. }
    rewrite lookup_delete_ne in Hy by congruence.
    destruct (Hh y c Hy) as [H0|(z & cz & Hz & Hcz)]; [left; auto|right; simpl].
    destruct (decide (z = x)) as [->|Hzx].
    + destruct (Hx cz (home s y) Hz Hcz) as [(z' & c' & Hz' & Hne & Hc')|He].
      * exists z', c'. simpl. rewrite lookup_delete_ne by congruence. auto.
      * exfalso. exact (He y c Hy eq_refl).
    + exists z, cz. simpl. rewrite lookup_delete_ne by congruence. auto.
Qed.

(** Filling an empty slot of a live object with a child of a non-empty slot keeps it. *)
Lemma cinv_insert s src d c :
  cinv s -> cslots s !! src = Some c -> cslots s !! d = None -> live_home s d ->
  cinv (CState (<[d := c]> (cslots s)) (<[d := src]> (cpar s)) (home s)).
Proof.
  intros [Ht Ha Hh] Hsrc Hd Hlive.
  assert (Hne : src <> d) by congruence.
  assert (Hmono : ∀ p, map_Exists (fun _ c => container c = Some p) (cslots s) ->
                       map_Exists (fun _ c => container c = Some p) (<[d := c]> (cslots s))).
  { intros p (z & cz & Hz & Hcz). exists z, cz. split; auto.
    rewrite lookup_insert_ne by congruence. auto. }
  assert (Hnoch : ∀ y, cpar s !! y <> Some d).
  { intros y Hy. destruct (Ht y d Hy) as [_ [cd Hcd]]. congruence. }
  split.
  - simpl. intros y q Hy. destruct (decide (y = d)) as [->|Hyd].
    + rewrite lookup_insert in Hy. injection Hy as <-.
      rewrite lookup_insert, lookup_insert_ne by congruence. split; eauto.
    + rewrite lookup_insert_ne in Hy by congruence. destruct (Ht y q Hy) as [Hy1 Hq].
      rewrite lookup_insert_ne by congruence. split; auto.
      destruct (decide (q = d)) as [->|Hqd].
      * rewrite lookup_insert. eauto.
      * rewrite lookup_insert_ne by congruence. auto.
  - simpl. apply acyc_insert_leaf; auto.
  - simpl. intros y cy Hy. unfold live_home; simpl. destruct (decide (y = d)) as [->|Hyd].
    + destruct Hlive as [H0|He]; [left; auto|right; apply Hmono; auto].
    + rewrite lookup_insert_ne in Hy by congruence.
      destruct (Hh y cy Hy) as [H0|He]; [left; auto|right; apply Hmono; auto].
Qed.

Lemma cinv_copy s src dst : cinv s -> cinv (ccopy s src dst).
Proof.
  intros Hi. unfold ccopy.
  destruct (cslots s !! src) as [c|] eqn:Hs; [|auto].
  destruct (cslots s !! dst) as [c'|] eqn:Hd; [auto|].
  case_bool_decide; [|auto]. apply cinv_insert; auto.
Qed.

Lemma cinv_delete s x : cinv s -> cinv (cdelete s x).
Proof.
  intros Hi. unfold cdelete.
  destruct (cslots s !! x) as [c|] eqn:Hx; [|auto].
  destruct (container c) as [p|] eqn:Hc.
  - case_bool_decide as Hok; [|auto]. apply cinv_remove; auto.
    intros c' p' Hx' Hc'. rewrite Hx in Hx'. injection Hx' as <-. rewrite Hc in Hc'.
    injection Hc' as <-. auto.
  - apply cinv_remove; auto. intros c' p' Hx' Hc'. rewrite Hx in Hx'. congruence.
Qed.

(** TcbConfigure's slot update keeps the invariant: the refusal of a slot holding the
    last cap to a CNode or TCB means the deletion never empties the source, and the
    copy checks that the source still holds what it held. The hole-2 mutant (neither
    check) makes this proof fail: the copy's parent link names an emptied slot. *)
Lemma cinv_replace s d src : cinv s -> cinv (creplace s d src).
Proof.
  intros Hi. unfold creplace.
  destruct (replace_refused s d) eqn:Hr; [auto|].
  assert (Hfin : ~ final_container s d).
  { intros Hf. unfold replace_refused in Hr. rewrite bool_decide_eq_false in Hr. auto. }
  assert (Hi1 : cinv (replace_clear s d)).
  { unfold replace_clear. unfold final_container in Hfin.
    destruct (cslots s !! d) as [cd|] eqn:Hd; [|auto].
    destruct (container cd) as [p|] eqn:Hc.
    - case_bool_decide as Ho.
      + apply cinv_remove; auto. intros c' p' Hd' Hc'. rewrite Hd in Hd'.
        injection Hd' as <-. rewrite Hc in Hc'. injection Hc' as <-. auto.
      + exfalso. apply Hfin. exact Ho.
    - apply cinv_remove; auto. intros c' p' Hd' Hc'. rewrite Hd in Hd'. congruence. }
  destruct (cslots s !! src) as [cc|] eqn:Hsrc; [|auto].
  destruct (replace_copy_ok (replace_clear s d) d src (Some cc)) eqn:Hok; [|auto].
  unfold replace_copy_ok in Hok. rewrite bool_decide_eq_true in Hok.
  assert (Hsrc1 : cslots (replace_clear s d) !! src = Some cc) by tauto.
  assert (Hd1 : cslots (replace_clear s d) !! d = None) by tauto.
  assert (Hlive1 : live_home (replace_clear s d) d) by tauto.
  apply cinv_insert; auto.
Qed.

Theorem cinv_step s o : cinv s -> cinv (cstep s o).
Proof.
  intros Hi. destruct o; simpl; [apply cinv_copy|apply cinv_delete|apply cinv_replace]; auto.
Qed.

(** T10 (issue 9 hole 2): from a state satisfying the invariant, every state reachable
    by Copy, Delete and TcbConfigure's slot updates satisfies it: no derivation link
    names an empty slot, and no cap sits in a slot of an object no cap names. *)
Theorem T10 s0 s : cinv s0 -> creach s0 s -> cinv s.
Proof. intros Hi Hr. induction Hr; auto. apply cinv_step; auto. Qed.

(** * The boot state and hole 2's hazard *)

(** Slot 1 of the boot CNode holds the only cap to a CNode at page 100, whose slot 20
    holds a frame cap; slot 2 holds a TCB cap (page 200) and slot 30, in that TCB, is
    the slot TcbConfigure updates. *)
Definition chome (x : nat) : nat := if Nat.eqb x 20 then 100 else if Nat.eqb x 30 then 200 else 0.
Definition cinit : cstate :=
  CState (<[1 := CcCNode 100]> (<[2 := CcTcb 200]> (<[20 := CcFrame 7]> ∅))) ∅ chome.

Lemma cinit_inv : cinv cinit.
Proof.
  split.
  - intros x p H. simpl in H. rewrite lookup_empty in H. discriminate.
  - intros x Hd. simpl in Hd. destruct (desc_first _ _ _ Hd) as [c Hc].
    rewrite lookup_empty in Hc. discriminate.
  - intros x c H. unfold live_home. simpl in *.
    destruct (decide (x = 20)) as [->|H20].
    + right. exists 1, (CcCNode 100). simpl. split; [reflexivity|]. reflexivity.
    + left. unfold chome. destruct (Nat.eqb_spec x 20); [congruence|].
      destruct (Nat.eqb_spec x 30); [|reflexivity].
      subst. rewrite !lookup_insert_ne in H by congruence. rewrite lookup_empty in H. discriminate.
Qed.

(** Hole 2's hazard: TcbConfigure would replace slot 1 (the last cap to CNode 100) with
    a copy of slot 20, which lies in that CNode. The update is refused; copying slot 20
    into the thread's slot 30 is not. *)
Example hole2_hazard_refused : creplace cinit 1 20 = cinit.
Proof. reflexivity. Qed.

Example hole2_ordinary_update :
  cslots (creplace cinit 30 20) !! 30 = Some (CcFrame 7) /\ cpar (creplace cinit 30 20) !! 30 = Some 20.
Proof. split; reflexivity. Qed.
