(** Model: kernel state (caps, derivation tree, objects, IO tables, VT-d caches). *)
From stdpp Require Export gmap.

(** Physical memory is counted in pages: every object occupies one page, an untyped
    [size] pages. Slots are global numbers (CNode slot arrays are abstracted away).
    An IOVA is a pair (i, j): index i in the IOSpace's root table selects an IO page
    table, index j in that table a leaf (two levels of the VT-d second-level walk). *)
Notation slot := nat (only parsing).
Notation paddr := nat (only parsing).

Record rights := Rights { rd : bool; wr : bool }.
Definition rsub (a b : rights) : bool := implb (rd a) (rd b) && implb (wr a) (wr b).
Definition rinter (a b : rights) : rights := Rights (rd a && rd b) (wr a && wr b).
Definition rnone (a : rights) : bool := negb (rd a || wr a).

Inductive kind := KCNode | KTcb | KEndpoint | KNotification | KFrame | KPageTable
                | KIoSpace | KIoPageTable.

Inductive cap :=
| CUntyped (base size : nat) (dev : bool) (wm : nat)
| CCNode (pa : paddr) | CTcb (pa : paddr) | CEndpoint (pa : paddr)
| CNotification (pa : paddr) | CPageTable (pa : paddr)
(** A frame: rights, device bit, and the IO mapping (IOSpace root, i, j) it made. *)
| CFrame (pa : paddr) (r : rights) (dev : bool) (m : option (paddr * nat * nat))
(** An IOSpace: its root table and the domain id the kernel gave it. *)
| CIoSpace (root : paddr) (dom : nat)
(** An IO page table and where it is installed (IOSpace root, i). *)
| CIoPageTable (pa : paddr) (m : option (paddr * nat))
| CPciDevice (rid : nat)
| CIrqControl
(** An MSI: the vector (IRTE handle) and the requester id allowed to raise it. *)
| CMsi (vec : nat) (rid : nat).

(** The object a cap names, with its kind (None: no memory object). *)
Definition obj_of (c : cap) : option (kind * paddr) :=
  match c with
  | CCNode pa => Some (KCNode, pa) | CTcb pa => Some (KTcb, pa)
  | CEndpoint pa => Some (KEndpoint, pa) | CNotification pa => Some (KNotification, pa)
  | CPageTable pa => Some (KPageTable, pa) | CFrame pa _ _ _ => Some (KFrame, pa)
  | CIoSpace pa _ => Some (KIoSpace, pa) | CIoPageTable pa _ => Some (KIoPageTable, pa)
  | _ => None
  end.
Definition covers (c : cap) (pa : paddr) : Prop := ∃ k, obj_of c = Some (k, pa).

Record tlbe := Tlbe { t_dom : nat; t_i : nat; t_j : nat; t_pa : paddr; t_r : rights }.
Record frec := Frec { f_rid : nat; f_i : nat; f_j : nat }.

Record state := State {
  caps : gmap slot cap;
  parent : gmap slot slot;          (** derivation tree: child slot -> parent slot *)
  orig : gset slot;                 (** slots holding original caps (made by Retype) *)
  doms : gmap paddr nat;            (** live IOSpaces: root -> domain id *)
  rootent : paddr -> nat -> option paddr;          (** root table entries *)
  leafent : paddr -> nat -> option (paddr * rights);  (** IO page-table leaves *)
  ctx : gmap nat (paddr * nat);     (** context entries: requester id -> (root, domain) *)
  ctxc : list (nat * (paddr * nat));(** context cache, possibly stale *)
  iotlb : list tlbe;                (** IOTLB, possibly stale *)
  irte : gmap nat (option nat);     (** IRTEs: handle -> source id checked (None: none) *)
  irtec : list (nat * option nat);  (** interrupt-entry cache, possibly stale *)
  faults : nat -> list frec;        (** per-domain DMA fault records *)
  klo : paddr; khi : paddr          (** the kernel's memory region [klo, khi) *)
}.

Definition in_kernel (s : state) (pa : paddr) : Prop := klo s <= pa < khi s.

(** The hardware walk from an IOSpace root. *)
Definition walk (s : state) (R : paddr) (i j : nat) : option (paddr * rights) :=
  match rootent s R i with Some T => leafent s T j | None => None end.

(** Derivation: [desc par u s] when u is a strict ancestor of s. *)
Inductive desc (par : gmap slot slot) (u : slot) : slot -> Prop :=
| d_base s : par !! s = Some u -> desc par u s
| d_step s p : desc par u p -> par !! s = Some p -> desc par u s.

Definition in_ut (c : cap) (pa : paddr) : Prop :=
  match c with CUntyped b sz _ _ => b <= pa < b + sz | _ => False end.

Global Instance rights_eq_dec : EqDecision rights.
Proof. solve_decision. Defined.
Global Instance kind_eq_dec : EqDecision kind.
Proof. solve_decision. Defined.
Global Instance cap_eq_dec : EqDecision cap.
Proof. solve_decision. Defined.
