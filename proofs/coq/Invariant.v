(** Invariant: the conditions every reachable state keeps (derivation tree, memory, VT-d). *)
From Iso Require Export Hw.

Definition in_region (lo hi pa : nat) : Prop := lo <= pa < hi.

(** The conditions on capabilities and memory alone. *)
Record mem_inv (m : gmap slot cap) (par : gmap slot slot) (lo hi : nat) : Prop := {
  (** Derivation tree (in the spirit of seL4's valid_mdb): no dangling links, no
      self-parent. *)
  i_tree : ∀ x p, par !! x = Some p ->
    is_Some (m !! x) /\ is_Some (m !! p) /\ x <> p;
  i_acyc : ∀ x, ~ desc par x x;
  (** Untyped ranges are disjoint and outside the kernel region. *)
  i_ut_disj : ∀ u1 u2 c1 c2 pa, m !! u1 = Some c1 -> m !! u2 = Some c2 ->
    in_ut c1 pa -> in_ut c2 pa -> u1 = u2;
  i_ut_kern : ∀ u c pa, m !! u = Some c -> in_ut c pa -> ~ in_region lo hi pa;
  (** No object lies in kernel memory. *)
  i_kern : ∀ x c pa, m !! x = Some c -> covers c pa -> ~ in_region lo hi pa;
  (** An object inside an untyped's range was derived from it, below its watermark. *)
  i_ut : ∀ x c pa u b sz dev wm, m !! x = Some c -> covers c pa ->
    m !! u = Some (CUntyped b sz dev wm) -> b <= pa < b + sz ->
    desc par u x /\ pa < b + wm;
  (** Caps to the same memory name the same kind of object. *)
  i_obj : ∀ x1 x2 c1 c2 k1 k2 pa, m !! x1 = Some c1 -> m !! x2 = Some c2 ->
    obj_of c1 = Some (k1, pa) -> obj_of c2 = Some (k2, pa) -> k1 = k2;
  (** A frame's device bit is that of the untyped it lies in. *)
  i_dev : ∀ x pa r dev mp u b sz dev' wm, m !! x = Some (CFrame pa r dev mp) ->
    m !! u = Some (CUntyped b sz dev' wm) -> b <= pa < b + sz -> dev = dev'
}.

Record inv (s : state) : Prop := {
  i_mem : mem_inv (caps s) (parent s) (klo s) (khi s);
  (** IOSpace caps and live domains agree; domain ids are unique. *)
  i_ios : ∀ x R d, caps s !! x = Some (CIoSpace R d) -> doms s !! R = Some d;
  i_doms : ∀ R d, doms s !! R = Some d -> ∃ x, caps s !! x = Some (CIoSpace R d);
  i_dom_uniq : ∀ R1 R2 d, doms s !! R1 = Some d -> doms s !! R2 = Some d -> R1 = R2;
  (** Context entries name live IOSpaces; cached context entries are current. *)
  i_ctx : ∀ rid R d, ctx s !! rid = Some (R, d) -> doms s !! R = Some d;
  i_ctxc : ∀ rid e, In (rid, e) (ctxc s) -> ctx s !! rid = Some e;
  (** Every IOTLB entry is what a current walk of its domain's IOSpace gives. *)
  i_tlb : ∀ e, In e (iotlb s) -> ∃ R, doms s !! R = Some (t_dom e) /\
    walk s R (t_i e) (t_j e) = Some (t_pa e, t_r e);
  (** Every translation of a live IOSpace is a RAM frame cap's recorded mapping. *)
  i_just : ∀ R d i j pa r, doms s !! R = Some d -> walk s R i j = Some (pa, r) ->
    ∃ x r0, caps s !! x = Some (CFrame pa r0 false (Some (R, i, j))) /\ rsub r r0 = true;
  (** Every root entry (even of a destroyed IOSpace) is recorded in its table's cap. *)
  i_root : ∀ R i T, rootent s R i = Some T ->
    ∃ x, caps s !! x = Some (CIoPageTable T (Some (R, i)));
  (** A table not installed anywhere is empty. *)
  i_empty : ∀ T j v, leafent s T j = Some v ->
    ∃ x m, caps s !! x = Some (CIoPageTable T (Some m));
  i_iopt1 : ∀ x1 x2 T m1 m2, caps s !! x1 = Some (CIoPageTable T m1) ->
    caps s !! x2 = Some (CIoPageTable T m2) -> x1 = x2;
  (** Every IRTE checks the source id of a live MSI cap's device; cached IRTEs are current. *)
  i_irte : ∀ v e, irte s !! v = Some e -> ∃ rid x, e = Some rid /\ caps s !! x = Some (CMsi v rid);
  i_msi : ∀ x v rid, caps s !! x = Some (CMsi v rid) -> irte s !! v = Some (Some rid);
  i_irtec : ∀ v e, In (v, e) (irtec s) -> irte s !! v = Some e
}.
