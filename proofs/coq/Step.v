(** Step: the kernel's operations as one executable function on the model state. *)
From Iso Require Export Model.

(** Record updates, one field each. *)
Definition set_caps s m := State m (parent s) (orig s) (doms s) (rootent s) (leafent s)
  (ctx s) (ctxc s) (iotlb s) (irte s) (irtec s) (faults s) (klo s) (khi s).
Definition set_tree s p o := State (caps s) p o (doms s) (rootent s) (leafent s)
  (ctx s) (ctxc s) (iotlb s) (irte s) (irtec s) (faults s) (klo s) (khi s).
Definition set_doms s d := State (caps s) (parent s) (orig s) d (rootent s) (leafent s)
  (ctx s) (ctxc s) (iotlb s) (irte s) (irtec s) (faults s) (klo s) (khi s).
Definition set_root s r := State (caps s) (parent s) (orig s) (doms s) r (leafent s)
  (ctx s) (ctxc s) (iotlb s) (irte s) (irtec s) (faults s) (klo s) (khi s).
Definition set_leaf s l := State (caps s) (parent s) (orig s) (doms s) (rootent s) l
  (ctx s) (ctxc s) (iotlb s) (irte s) (irtec s) (faults s) (klo s) (khi s).
Definition set_ctx s c cc := State (caps s) (parent s) (orig s) (doms s) (rootent s)
  (leafent s) c cc (iotlb s) (irte s) (irtec s) (faults s) (klo s) (khi s).
Definition set_tlb s t := State (caps s) (parent s) (orig s) (doms s) (rootent s)
  (leafent s) (ctx s) (ctxc s) t (irte s) (irtec s) (faults s) (klo s) (khi s).
Definition set_irte s e ec := State (caps s) (parent s) (orig s) (doms s) (rootent s)
  (leafent s) (ctx s) (ctxc s) (iotlb s) e ec (faults s) (klo s) (khi s).
Definition set_faults s f := State (caps s) (parent s) (orig s) (doms s) (rootent s)
  (leafent s) (ctx s) (ctxc s) (iotlb s) (irte s) (irtec s) f (klo s) (khi s).

Definition upd {A} (f : nat -> A) (k : nat) (v : A) : nat -> A :=
  fun x => if Nat.eqb x k then v else f x.
Definition upd2 {A} (f : nat -> nat -> A) (k l : nat) (v : A) : nat -> nat -> A :=
  fun x y => if Nat.eqb x k && Nat.eqb y l then v else f x y.

(** Invalidations (each completes before the operation returns). *)
Definition inval_page (s : state) (d i j : nat) : state :=
  set_tlb s (filter (fun e => ~ (t_dom e = d /\ t_i e = i /\ t_j e = j)) (iotlb s)).
Definition inval_range (s : state) (d i : nat) : state :=
  set_tlb s (filter (fun e => ~ (t_dom e = d /\ t_i e = i)) (iotlb s)).
Definition inval_domain (s : state) (d : nat) : state :=
  set_tlb s (filter (fun e => t_dom e <> d) (iotlb s)).
Definition inval_ctx (s : state) (rid : nat) : state :=
  set_ctx s (ctx s) (filter (fun e => e.1 <> rid) (ctxc s)).
Definition inval_irte (s : state) (v : nat) : state :=
  set_irte s (irte s) (filter (fun e => e.1 <> v) (irtec s)).

Definition dom_of (s : state) (R : paddr) : option nat := doms s !! R.

(** FrameUnmapIo on the cap in slot [f]: the leaf is cleared if it still names this
    frame, then the page is invalidated in the IOSpace's domain. *)
Definition unmap_frame (s : state) (f : slot) : state :=
  match caps s !! f with
  | Some (CFrame pa r dev (Some (R, i, j))) =>
      let s1 := set_caps s (<[f := CFrame pa r dev None]> (caps s)) in
      match rootent s R i with
      | Some T =>
          match leafent s T j with
          | Some (pa', _) =>
              if Nat.eq_dec pa pa' then
                let s2 := set_leaf s1 (upd2 (leafent s) T j None) in
                match dom_of s R with
                | Some d => inval_page s2 d i j (* MUTANT skip-inval: s2 *)
                | None => s2
                end
              else s1
          | None => s1
          end
      | None => s1
      end
  | _ => s
  end.

(** IoPageTableUnmap on the cap in slot [t]: the root entry is cleared, the table
    emptied (so it can be installed elsewhere without old leaves), the range flushed. *)
Definition unmap_table (s : state) (t : slot) : state :=
  match caps s !! t with
  | Some (CIoPageTable T (Some (R, i))) =>
      let s1 := set_caps s (<[t := CIoPageTable T None]> (caps s)) in
      let s2 := match rootent s R i with
                | Some T' => if Nat.eq_dec T T' then set_root s1 (upd2 (rootent s) R i None)
                             else s1
                | None => s1 end in
      let s3 := set_leaf s2 (upd (leafent s) T (fun _ => None)) (* MUTANT skip-empty: s2 *) in
      match dom_of s R with Some d => inval_range s3 d i | None => s3 end
  | _ => s
  end.

(** The last IOSpace cap is gone: its devices lose their context entries (and cached
    ones), its domain's IOTLB entries and fault records go, the domain id is freed. *)
Definition destroy_iospace (s : state) (R d : nat) : state :=
  let s1 := set_ctx s (filter (fun e => e.2.1 <> R) (ctx s))
                      (filter (fun e => e.2.1 <> R) (ctxc s)) in
  let s2 := inval_domain s1 d in
  let s3 := set_faults s2 (upd (faults s) d []) in
  set_doms s3 (delete R (doms s)).

(** The last cap of an MSI vector is gone: its IRTE is removed and invalidated. *)
Definition release_msi (s : state) (v : nat) : state :=
  inval_irte (set_irte s (delete v (irte s)) (irtec s)) v.

Definition has_children (s : state) (x : slot) : bool :=
  bool_decide (map_Exists (fun _ p => p = x) (parent s)).
Definition is_ios (R : paddr) (c : cap) : bool :=
  match c with CIoSpace R' _ => Nat.eqb R R' | _ => false end.
Definition is_msi (v : nat) (c : cap) : bool :=
  match c with CMsi v' _ => Nat.eqb v v' | _ => false end.
Definition other_ios (s : state) (x : slot) (R : paddr) : bool :=
  bool_decide (map_Exists (fun k c => k <> x /\ is_ios R c = true) (caps s)).
Definition other_msi (s : state) (x : slot) (v : nat) : bool :=
  bool_decide (map_Exists (fun k c => k <> x /\ is_msi v c = true) (caps s)).

(** The slot is emptied; its children become children of its parent. *)
Definition reparent (p : gmap slot slot) (x : slot) : gmap slot slot :=
  omap (fun q => if Nat.eq_dec q x then p !! x else Some q) (delete x p).
Definition remove_slot (s : state) (x : slot) : state :=
  set_tree (set_caps s (delete x (caps s))) (reparent (parent s) x) (orig s ∖ {[x]}).

(** Delete of one slot: its mapping is removed, the slot emptied, and if it held the
    last cap to an IOSpace or MSI vector, that object is finalised. *)
Definition delete_slot (s : state) (x : slot) : state :=
  match caps s !! x with
  | None => s
  | Some c =>
      let s1 := match c with
                | CFrame _ _ _ (Some _) => unmap_frame s x
                | CIoPageTable _ (Some _) => unmap_table s x
                | _ => s end in
      let s2 := remove_slot s1 x in
      match c with
      | CIoSpace R d => if other_ios s x R then s2 else destroy_iospace s2 R d
      | CMsi v _ => if other_msi s x v then s2 else release_msi s2 v
      | _ => s2
      end
  end.

Fixpoint descb (fuel : nat) (p : gmap slot slot) (u x : slot) : bool :=
  match fuel with
  | 0 => false
  | S f => match p !! x with
           | Some q => Nat.eqb q u || descb f p u q
           | None => false
           end
  end.

Definition new_cap (k : kind) (pa : paddr) (dev : bool) (d : nat) : cap :=
  match k with
  | KCNode => CCNode pa | KTcb => CTcb pa | KEndpoint => CEndpoint pa
  | KNotification => CNotification pa | KPageTable => CPageTable pa
  | KFrame => CFrame pa (Rights true true) dev None
  | KIoSpace => CIoSpace pa d | KIoPageTable => CIoPageTable pa None
  end.

(** Retype one object from the untyped in [u] into the empty slot [dst]. An untyped
    with no children starts again at offset 0; device memory gives only frames; a new
    IOSpace gets the free domain id [d]; the new object's memory is zeroed. *)
Definition retype (s : state) (u : slot) (k : kind) (dst : slot) (d : nat) : state :=
  match caps s !! u, caps s !! dst with
  | Some (CUntyped b sz dev wm), None =>
      let wm0 := if has_children s u then wm else 0 in
      if bool_decide (wm0 < sz /\ u <> dst /\ (dev = true -> k = KFrame) /\
                      (k = KIoSpace -> map_Forall (fun _ d' => d' <> d) (doms s)))
      then
        let pa := b + wm0 in
        let c := new_cap k pa dev d in
        let s1 := set_caps s (<[dst := c]> (<[u := CUntyped b sz dev (S wm0)]> (caps s))) in
        let s2 := set_tree s1 (<[dst := u]> (parent s)) ({[dst]} ∪ orig s) in
        let s3 := set_leaf (set_root s2 (upd (rootent s) pa (fun _ => None)))
                           (upd (leafent s) pa (fun _ => None)) in
        match k with
        | KIoSpace => set_faults (set_doms s3 (<[pa := d]> (doms s))) (upd (faults s) d [])
        | _ => s3
        end
      else s
  | _, _ => s
  end.

(** Copy / Mint: never of an Untyped, IO page table, page table or IRQControl cap; a
    frame copy is unmapped and may have fewer rights. *)
Definition derive (c : cap) (r : rights) : option cap :=
  match c with
  | CUntyped _ _ _ _ | CIoPageTable _ _ | CPageTable _ | CIrqControl => None
  | CFrame pa r0 dev _ => Some (CFrame pa (rinter r0 r) dev None)
  | _ => Some c
  end.

Definition copy (s : state) (src dst : slot) (r : rights) : state :=
  match caps s !! src, caps s !! dst with
  | Some c, None =>
      match derive c r with
      | Some c' => if Nat.eq_dec src dst then s else
          set_tree (set_caps s (<[dst := c']> (caps s))) (<[dst := src]> (parent s)) (orig s)
      | None => s
      end
  | _, _ => s
  end.

(** FrameMapIo: needs the frame cap (RAM, unmapped, rights covering [r]) and the
    IOSpace cap; the table at index i must be installed and leaf j free. *)
Definition map_frame (s : state) (f io : slot) (i j : nat) (r : rights) : state :=
  match caps s !! f, caps s !! io with
  | Some (CFrame pa r0 false None), Some (CIoSpace R d) =>
      if rsub r r0 && negb (rnone r) then
        match rootent s R i with
        | Some T =>
            match leafent s T j with
            | None =>
                set_leaf (set_caps s (<[f := CFrame pa r0 false (Some (R, i, j))]> (caps s)))
                         (upd2 (leafent s) T j (Some (pa, r)))
            | Some _ => s
            end
        | None => s
        end
      else s
  | _, _ => s
  end.

(** IoPageTableMap: an unmapped table installed at a free root index. *)
Definition map_table (s : state) (t io : slot) (i : nat) : state :=
  match caps s !! t, caps s !! io with
  | Some (CIoPageTable T None), Some (CIoSpace R d) =>
      match rootent s R i with
      | None => set_root (set_caps s (<[t := CIoPageTable T (Some (R, i))]> (caps s)))
                         (upd2 (rootent s) R i (Some T))
      | Some _ => s
      end
  | _, _ => s
  end.

(** IoSpaceAssign: a device not in any IOSpace gets a context entry; the context
    cache (device-selective) and the domain's IOTLB are invalidated. *)
Definition assign (s : state) (io pci : slot) : state :=
  match caps s !! io, caps s !! pci with
  | Some (CIoSpace R d), Some (CPciDevice rid) =>
      match ctx s !! rid with
      | None => inval_domain (inval_ctx (set_ctx s (<[rid := (R, d)]> (ctx s)) (ctxc s)) rid) d
      | Some _ => s
      end
  | _, _ => s
  end.

Definition unassign (s : state) (io pci : slot) : state :=
  match caps s !! io, caps s !! pci with
  | Some (CIoSpace R d), Some (CPciDevice rid) =>
      match ctx s !! rid with
      | Some (R', _) => if Nat.eq_dec R R'
          then inval_domain (inval_ctx (set_ctx s (delete rid (ctx s)) (ctxc s)) rid) d
          else s
      | None => s
      end
  | _, _ => s
  end.

(** IrqControlGetMsi: a free vector gets an IRTE that checks the device's source id. *)
Definition get_msi (s : state) (ctl pci dst : slot) (v : nat) : state :=
  match caps s !! ctl, caps s !! pci, caps s !! dst with
  | Some CIrqControl, Some (CPciDevice rid), None =>
      match irte s !! v with
      | None =>
          let s1 := set_caps s (<[dst := CMsi v rid]> (caps s)) in
          let s2 := set_tree s1 (<[dst := ctl]> (parent s)) (orig s) in
          inval_irte (set_irte s2 (<[v := Some rid]> (irte s)) (irtec s)) v
          (* MUTANT skip-sid: <[v := None]> *)
      | Some _ => s
      end
  | _, _, _ => s
  end.

(** IoSpaceNextFault: pops the oldest fault record of the caller's own domain. *)
Definition next_fault (s : state) (io : slot) : state :=
  match caps s !! io with
  | Some (CIoSpace R d) => set_faults s (upd (faults s) d (tail (faults s d)))
  | _ => s
  end.

Inductive op :=
| Retype (u : slot) (k : kind) (dst : slot) (d : nat)
| Copy (src dst : slot) (r : rights)
| Delete (x : slot)
| RevokeOne (x victim : slot)
| MapIo (f io : slot) (i j : nat) (r : rights)
| UnmapIo (f : slot)
| MapIoTable (t io : slot) (i : nat)
| UnmapIoTable (t : slot)
| Assign (io pci : slot)
| Unassign (io pci : slot)
| GetMsi (ctl pci dst : slot) (v : nat)
| NextFault (io : slot).

(** One system call, or one preemptible unit of Revoke: deleting one descendant of [x]
    that has no children (the kernel's Revoke loops over these with a preemption
    point after each). *)
Definition step (s : state) (o : op) : state :=
  match o with
  | Retype u k dst d => retype s u k dst d
  | Copy a b r => copy s a b r
  | Delete x => delete_slot s x
  | RevokeOne x v =>
      if descb (size (parent s)) (parent s) x v && negb (has_children s v)
      then delete_slot s v else s
  | MapIo f io i j r => map_frame s f io i j r
  | UnmapIo f => match caps s !! f with
                 | Some (CFrame _ _ _ (Some _)) => unmap_frame s f | _ => s end
  | MapIoTable t io i => map_table s t io i
  | UnmapIoTable t => unmap_table s t
  | Assign io p => assign s io p
  | Unassign io p => unassign s io p
  | GetMsi c p d v => get_msi s c p d v
  | NextFault io => next_fault s io
  end.
