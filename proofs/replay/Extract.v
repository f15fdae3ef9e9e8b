(** Extract: the model's step, hardware steps and observations to OCaml (model.ml). *)
From Iso Require Import Replay.
From Coq Require Import Extraction ExtrOcamlBasic ExtrOcamlNatInt.

(** proofs/check.sh compiles this in build/replay (not part of _CoqProject): it writes
    model.ml, which replay.ml uses. [nat] becomes OCaml's [int] (ExtrOcamlNatInt; the
    traces name numbers below 100, far from overflow), bool, option, lists and pairs
    OCaml's own (ExtrOcamlBasic); everything else is extracted from its Coq definition,
    stdpp's gmap and gset included. [Nat.eqb] as the model's files name it (through
    stdpp) is an alias ExtrOcamlNatInt's mapping of [Init.Nat.eqb] does not reach; it is
    mapped the same way here. *)
Extraction Language OCaml.
Extract Inlined Constant Coq.Numbers.Natural.Peano.NPeano.Nat.eqb => "(=)".
Extraction "model.ml" init replay_event obs_caps obs_parent obs_orig obs_doms obs_ctx
  obs_irte obs_root obs_leaf obs_faults.
