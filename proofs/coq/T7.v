(** T7: a device raises an MSI only through an IRTE that checks its own source id. *)
From Iso Require Export T6.

(** T7: if [rid] gets vector [v] delivered (through the IRTE or a cached copy of any
    age), the IRTE for [v] checks source id [rid] and a live MSI cap for [rid]'s
    PciDevice names [v]. *)
Theorem T7 s0 s rid v :
  inv s0 -> reachable s0 s -> msi_ok s rid v ->
  irte s !! v = Some (Some rid) /\ ∃ x, caps s !! x = Some (CMsi v rid).
Proof.
  intros H0 Hr (e & He & Hrid). pose proof (T1_invariant _ _ H0 Hr) as Hi.
  assert (Hv : irte s !! v = Some e) by (destruct He; [auto|eapply i_irtec; eauto]).
  destruct (i_irte _ Hi _ _ Hv) as (rid' & x & -> & Hx).
  destruct Hrid as [Hrid|Hrid]; [discriminate|]. injection Hrid as ->. eauto.
Qed.
