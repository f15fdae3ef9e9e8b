(** Init: a boot state satisfying the invariant, and a run of step where a device DMAs. *)
From Iso Require Export T9.

(** Two untypeds (RAM at pages 16..31, device memory at 64..67), two PciDevice caps
    (requester ids 8 and 16), IRQControl; the kernel occupies pages 0..15. *)
Definition init : state :=
  State (<[0 := CUntyped 16 16 false 0]> (<[1 := CUntyped 64 4 true 0]>
        (<[2 := CPciDevice 8]> (<[3 := CPciDevice 16]> (<[4 := CIrqControl]> ∅)))))
        ∅ {[0; 1; 2; 3; 4]} ∅ (fun _ _ => None) (fun _ _ => None) ∅ [] [] ∅ [] (fun _ => [])
        0 16.

Ltac init_lookup H :=
  repeat match type of H with
  | <[_:=_]> _ !! _ = Some _ => apply lookup_insert_Some in H as [[? H]|[_ H]]
  | ∅ !! _ = Some _ => rewrite lookup_empty in H; discriminate
  end; subst; try discriminate.

(** The invariant is satisfiable: the theorems, all of the form "from a state where
    the invariant holds", are not vacuous. *)
Theorem init_inv : inv init.
Proof.
  constructor; simpl.
  - constructor.
    + intros x p H. rewrite lookup_empty in H. discriminate.
    + intros x Hd. destruct (desc_first _ _ _ Hd) as [c Hc]. rewrite lookup_empty in Hc. discriminate.
    + intros u1 u2 c1 c2 pa H1 H2 Hi1 Hi2.
      init_lookup H1; init_lookup H2; simpl in *; auto; lia.
    + intros u c pa H Hin. unfold in_region. init_lookup H; simpl in *; lia.
    + intros x c pa H [k Hc]. init_lookup H; discriminate.
    + intros x c pa u b sz dev wm H [k Hc]. init_lookup H; discriminate.
    + intros x1 x2 c1 c2 k1 k2 pa H1. init_lookup H1; discriminate.
    + intros x pa r dev mp u b sz dev' wm H. init_lookup H.
  - intros x R d H. init_lookup H.
  - intros R d H. rewrite lookup_empty in H. discriminate.
  - intros R1 R2 d H. rewrite lookup_empty in H. discriminate.
  - intros rid R d H. rewrite lookup_empty in H. discriminate.
  - intros rid e [].
  - intros e [].
  - intros R d i j pa r H. rewrite lookup_empty in H. discriminate.
  - intros R i T H. discriminate.
  - intros T j v H. discriminate.
  - intros x1 x2 T m1 m2 H. init_lookup H.
  - intros v e H. rewrite lookup_empty in H. discriminate.
  - intros x v rid H. init_lookup H.
  - intros v e [].
Qed.

(** Every theorem applies from [init]: e.g. the invariant holds in every reachable state. *)
Corollary init_reachable_inv s : reachable init s -> inv s.
Proof. apply T1_invariant, init_inv. Qed.

(** A run of [step]: retype a frame, an IOSpace (domain 5) and an IO page table, install
    the table at root index 3, map the frame read-only at (3, 7), assign device 8. *)
Definition run : list op :=
  [Retype 0 KFrame 10 0; Retype 0 KIoSpace 11 5; Retype 0 KIoPageTable 12 0;
   MapIoTable 12 11 3; MapIo 10 11 3 7 (Rights true false); Assign 11 2].
Definition after_run : state := fold_left step run init.

Lemma after_run_reachable : reachable init after_run.
Proof.
  unfold after_run, run. cbn [fold_left].
  repeat match goal with |- reachable _ (step _ _) => apply reach_step end. apply reach_init.
Qed.

Lemma after_run_ctxc : ctxc after_run = [].
Proof. vm_compute. reflexivity. Qed.
Lemma after_run_tlb : iotlb after_run = [].
Proof. vm_compute. reflexivity. Qed.
Lemma after_run_ctx8 : ctx after_run !! 8 = Some (17, 5).
Proof. vm_compute. reflexivity. Qed.
Lemma after_run_ctx16 : ctx after_run !! 16 = None.
Proof. vm_compute. reflexivity. Qed.
Lemma after_run_walk : walk after_run 17 3 7 = Some (16, Rights true false).
Proof. vm_compute. reflexivity. Qed.

(** The model is not vacuous: after the run, device 8 reads page 16 at IOVA (3, 7)... *)
Example run_dma_reads : dma_ok after_run 8 3 7 (Rights true false) 16.
Proof.
  exists 17, 5. split; [left; exact after_run_ctx8|right].
  exists (Rights true false). rewrite after_run_walk. auto.
Qed.

(** ... but may not write it (read-only mapping), and device 16 (unassigned) reaches nothing. *)
Example run_dma_no_write pa : ~ dma_ok after_run 8 3 7 (Rights false true) pa.
Proof.
  unfold dma_ok, ctx_view. rewrite after_run_ctxc, after_run_tlb, after_run_ctx8.
  intros (R & d & [Hc|[]] & [(r & [] & _)|(r & Hw & Hr)]).
  injection Hc as <- <-. rewrite after_run_walk in Hw. injection Hw as <- <-. discriminate.
Qed.
Example run_dma_other pa i j w : ~ dma_ok after_run 16 i j w pa.
Proof.
  unfold dma_ok, ctx_view. rewrite after_run_ctxc, after_run_ctx16.
  intros (R & d & [Hc|[]] & _). discriminate.
Qed.

(** Issue 9 hole 13 (a boot RAM range overflowing so that an untyped covers the kernel
    image) gives a boot state outside the theorems' precondition. *)
Lemma hole13_boot_state s u c pa :
  caps s !! u = Some c -> in_ut c pa -> in_kernel s pa -> ~ inv s.
Proof. intros Hu Hin Hk Hi. eapply (i_ut_kern _ _ _ _ (i_mem _ Hi)); eauto. Qed.
