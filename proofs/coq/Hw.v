(** Hw: what the VT-d hardware may do at any time (fill, evict, DMA, MSI), and reachability. *)
From Iso Require Export Step.

(** The context a device's DMA uses: its context entry, or a cached copy. *)
Definition ctx_view (s : state) (rid : nat) (e : paddr * nat) : Prop :=
  ctx s !! rid = Some e \/ In (rid, e) (ctxc s).

(** A DMA by [rid] at IOVA (i, j) with rights [w] reaches [pa]: through an IOTLB entry
    of the context's domain, or through a walk of the context's root. *)
Definition dma_ok (s : state) (rid i j : nat) (w : rights) (pa : paddr) : Prop :=
  ∃ R d, ctx_view s rid (R, d) /\
    ((∃ r, In (Tlbe d i j pa r) (iotlb s) /\ rsub w r = true) \/
     (∃ r, walk s R i j = Some (pa, r) /\ rsub w r = true)).

(** An MSI from [rid] with handle [v] is delivered: an IRTE (current or cached) for v
    that checks [rid] as the source, or checks no source. *)
Definition msi_ok (s : state) (rid v : nat) : Prop :=
  ∃ e, (irte s !! v = Some e \/ In (v, e) (irtec s)) /\ (e = None \/ e = Some rid).

(** A fault record is appended to the queue of the faulting device's domain; a
    device with no context entry is only logged. *)
Definition record_fault (s : state) (rid i j : nat) : state :=
  match ctx s !! rid with
  | Some (_, d) => set_faults s (upd (faults s) d (faults s d ++ [Frec rid i j]))
  | None => s
  end.

Inductive hw : state -> state -> Prop :=
(** Fill: the IOTLB caches what a walk from a device's context gives now. *)
| HwFillTlb s rid R d i j pa r :
    ctx_view s rid (R, d) -> walk s R i j = Some (pa, r) ->
    hw s (set_tlb s (Tlbe d i j pa r :: iotlb s))
| HwFillCtx s rid e : ctx s !! rid = Some e -> hw s (set_ctx s (ctx s) ((rid, e) :: ctxc s))
| HwFillIrte s v e : irte s !! v = Some e -> hw s (set_irte s (irte s) ((v, e) :: irtec s))
(** Evict: any cache keeps any subset of its entries. *)
| HwEvict s t cc ic :
    (∀ x, In x t -> In x (iotlb s)) -> (∀ x, In x cc -> In x (ctxc s)) ->
    (∀ x, In x ic -> In x (irtec s)) ->
    hw s (set_irte (set_ctx (set_tlb s t) (ctx s) cc) (irte s) ic)
(** DMA: a translated access changes no state; one without a translation faults. *)
| HwDma s rid i j w pa : dma_ok s rid i j w pa -> hw s s
| HwDmaFault s rid i j w : (∀ pa, ~ dma_ok s rid i j w pa) -> hw s (record_fault s rid i j)
| HwMsi s rid v : msi_ok s rid v -> hw s s.

(** States reachable from [s0] by system calls, Revoke units and hardware steps:
    every state at a system-call return or a preemption point. *)
Inductive reachable (s0 : state) : state -> Prop :=
| reach_init : reachable s0 s0
| reach_step s o : reachable s0 s -> reachable s0 (step s o)
| reach_hw s s' : reachable s0 s -> hw s s' -> reachable s0 s'.
