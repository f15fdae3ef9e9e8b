(** Threads: send queues, fault messages, CancelBadgedSends and endpoint deletion. *)
From Iso Require Export Cspace.

(** A third layer of the model: threads, the endpoint caps in their CSpaces, and what
    cancelling a blocked send does to the sender (issue 9 hole 12: CancelBadgedSends
    and endpoint deletion wrote an error code into rax of a thread blocked sending a
    FAULT message, which then resumed with a corrupted register; and a send-only
    endpoint cap was enough to cancel other threads' sends). As the kernel does
    (`tcb::on_cancel`, `endpoint::may_cancel_sends`), a cancelled fault sender is
    restarted with its registers untouched and faults again; a thread blocked in a
    send system call runs on with an error in rax; cancelling needs every right. *)

Record trights := TRights { t_read : bool; t_write : bool; t_grant : bool }.
Definition all_rights (r : trights) : bool := t_read r && t_write r && t_grant r.

(** Caps in a thread's CSpace: an endpoint (with badge and rights) or a TCB. *)
Inductive tcap := TcEndpoint (ep badge : nat) (r : trights) | TcTcb (t : nat).

Inductive thstate :=
| ThRunning
(** Blocked sending on [ep] with [badge]; [fault]: the message is a fault message. *)
| ThSending (ep badge : nat) (fault : bool)
(** Made runnable by a cancel: a fault sender faults again, a system call errs. *)
| ThRestart.

Record thread := Thread { th_state : thstate; th_rax : nat }.

Record tstate := TState {
  threads : gmap nat thread;
  tcaps : gmap (nat * nat) tcap    (** (thread, slot) -> cap in that thread's CSpace *)
}.

(** The error a cancelled send system call returns in rax. *)
Definition err_cancelled : nat := 1.

Inductive top :=
(** Thread [t] sends on the endpoint cap in its slot [x] and blocks (no receiver). *)
| TSend (t x : nat)
(** Thread [t] faults: it blocks sending a fault message on its fault endpoint. *)
| TFault (t ep badge : nat)
(** Thread [t] invokes CancelBadgedSends on the endpoint cap in its slot [x]. *)
| TCancel (t x : nat)
(** The endpoint [ep] dies (its last cap deleted): every send on it is cancelled. *)
| TDeleteEp (ep : nat)
(** Thread [t] runs user code, which sets its rax to [v]. *)
| TRun (t v : nat)
(** Thread [t] writes rax of the thread its TCB cap in slot [x] names. *)
| TWriteRegs (t x v : nat).

(** What a cancelled send does to the sender (`tcb::on_cancel`). *)
Definition cancel_thread (th : thread) : thread :=
  match th_state th with
  | ThSending _ _ fault => Thread ThRestart (if fault then th_rax th else err_cancelled)
  | _ => th
  end.

(** Cancels every send on [ep] with a badge [badge] names ([None]: any badge). *)
Definition cancel_sends (s : tstate) (ep : nat) (badge : option nat) : tstate :=
  TState (fmap (fun th => match th_state th with
                          | ThSending ep' b _ =>
                              if bool_decide (ep' = ep /\ (badge = None \/ badge = Some b))
                              then cancel_thread th else th
                          | _ => th end) (threads s)) (tcaps s).

Definition running (s : tstate) (t : nat) : option thread :=
  match threads s !! t with
  | Some th => match th_state th with ThRunning => Some th | _ => None end
  | None => None
  end.

(** CancelBadgedSends needs every right on the cap (`endpoint::may_cancel_sends`). *)
Definition may_cancel (r : trights) : bool := all_rights r.

Definition tstep (s : tstate) (o : top) : tstate :=
  match o with
  | TSend t x =>
      match running s t, tcaps s !! (t, x) with
      | Some th, Some (TcEndpoint ep b r) =>
          if t_write r then TState (<[t := Thread (ThSending ep b false) (th_rax th)]> (threads s)) (tcaps s)
          else s
      | _, _ => s
      end
  | TFault t ep b =>
      match running s t with
      | Some th => TState (<[t := Thread (ThSending ep b true) (th_rax th)]> (threads s)) (tcaps s)
      | None => s
      end
  | TCancel t x =>
      match running s t, tcaps s !! (t, x) with
      | Some _, Some (TcEndpoint ep b r) => if may_cancel r then cancel_sends s ep (Some b) else s
      | _, _ => s
      end
  | TDeleteEp ep => cancel_sends s ep None
  | TRun t v =>
      match threads s !! t with
      | Some (Thread ThRunning _) | Some (Thread ThRestart _) =>
          TState (<[t := Thread ThRunning v]> (threads s)) (tcaps s)
      | _ => s
      end
  | TWriteRegs t x v =>
      match running s t, tcaps s !! (t, x) with
      | Some _, Some (TcTcb u) =>
          match threads s !! u with
          | Some th => TState (<[u := Thread (th_state th) v]> (threads s)) (tcaps s)
          | None => s
          end
      | _, _ => s
      end
  end.

(** * Theorems *)

Lemma cancel_sends_lookup s ep badge t :
  threads (cancel_sends s ep badge) !! t =
  (fun th => match th_state th with
             | ThSending ep' b _ =>
                 if bool_decide (ep' = ep /\ (badge = None \/ badge = Some b))
                 then cancel_thread th else th
             | _ => th end) <$> threads s !! t.
Proof. unfold cancel_sends. simpl. apply lookup_fmap. Qed.

(** T11 (issue 9 hole 12, registers): a thread's rax changes only when it runs, when a
    holder of a TCB cap naming it writes it, or when a send it made in a system call
    (not a fault message) is cancelled. A thread blocked sending a fault message keeps
    its registers through every cancel. *)
Theorem T11 s o t th th' :
  threads s !! t = Some th -> threads (tstep s o) !! t = Some th' -> th_rax th' <> th_rax th ->
  (∃ v, o = TRun t v) \/ (∃ u x v, o = TWriteRegs u x v /\ tcaps s !! (u, x) = Some (TcTcb t)) \/
  (∃ ep b, th_state th = ThSending ep b false /\ th_rax th' = err_cancelled).
Proof.
  intros Ht Ht' Hne. destruct o as [u x|u ep b|u x|ep|u v|u x v]; unfold tstep in Ht'.
  - destruct (running s u) as [thu|] eqn:Hr; [|congruence].
    destruct (tcaps s !! (u, x)) as [[ep b r|w]|]; try congruence.
    destruct (t_write r); [|congruence]. simpl in Ht'.
    destruct (decide (t = u)) as [->|Htu].
    + rewrite lookup_insert in Ht'. injection Ht' as <-. simpl in Hne.
      unfold running in Hr. rewrite Ht in Hr. exfalso. apply Hne.
      destruct (th_state th); congruence.
    + rewrite lookup_insert_ne in Ht' by congruence. congruence.
  - destruct (running s u) as [thu|] eqn:Hr; [|congruence]. simpl in Ht'.
    destruct (decide (t = u)) as [->|Htu].
    + rewrite lookup_insert in Ht'. injection Ht' as <-. simpl in Hne.
      unfold running in Hr. rewrite Ht in Hr. destruct (th_state th); congruence.
    + rewrite lookup_insert_ne in Ht' by congruence. congruence.
  - destruct (running s u) as [thu|]; [|congruence].
    destruct (tcaps s !! (u, x)) as [[ep b r|w]|]; try congruence.
    destruct (may_cancel r); [|congruence].
    rewrite cancel_sends_lookup, Ht in Ht'. simpl in Ht'. injection Ht' as <-.
    right; right. destruct (th_state th) as [|ep' b' [|]|] eqn:Hs; try congruence.
    + case_bool_decide; [|congruence]. unfold cancel_thread in Hne. rewrite Hs in Hne.
      simpl in Hne. congruence.
    + case_bool_decide; [|congruence]. exists ep', b'. split; auto.
      unfold cancel_thread. rewrite Hs. reflexivity.
  - rewrite cancel_sends_lookup, Ht in Ht'. simpl in Ht'. injection Ht' as <-.
    right; right. destruct (th_state th) as [|ep' b' [|]|] eqn:Hs; try congruence.
    + case_bool_decide; [|congruence]. unfold cancel_thread in Hne. rewrite Hs in Hne.
      simpl in Hne. congruence.
    + case_bool_decide; [|congruence]. exists ep', b'. split; auto.
      unfold cancel_thread. rewrite Hs. reflexivity.
  - left. destruct (decide (t = u)) as [->|Htu]; [eauto|].
    destruct (threads s !! u) as [[[|? ? ?|] ?]|]; simpl in Ht';
      try (rewrite lookup_insert_ne in Ht' by congruence); congruence.
  - right; left. destruct (running s u) as [thu|]; [|congruence].
    destruct (tcaps s !! (u, x)) as [[ep b r|w]|] eqn:Hc; try congruence.
    destruct (threads s !! w) as [thw|] eqn:Hw; [|congruence]. simpl in Ht'.
    destruct (decide (t = w)) as [->|Htw].
    + eauto.
    + rewrite lookup_insert_ne in Ht' by congruence. congruence.
Qed.

(** T12 (issue 9 hole 12, authority): a thread leaves a send queue only when its
    endpoint dies, or by CancelBadgedSends through a cap to that endpoint with every
    right and the thread's badge. *)
(** The state is unchanged: the thread is still blocked. *)
Ltac unchanged Ht Ht' Hs' := rewrite Ht in Ht'; injection Ht' as <-; simpl in Hs'; congruence.

Theorem T12 s o t ep b f r0 th' :
  threads s !! t = Some (Thread (ThSending ep b f) r0) ->
  threads (tstep s o) !! t = Some th' -> th_state th' <> ThSending ep b f ->
  o = TDeleteEp ep \/
  (∃ u x r, o = TCancel u x /\ tcaps s !! (u, x) = Some (TcEndpoint ep b r) /\ all_rights r = true).
Proof.
  intros Ht Ht' Hs'.
  destruct o as [u x|u ep2 b2|u x|ep2|u v|u x v]; unfold tstep in Ht'.
  all: try (destruct (running s u) as [thu|] eqn:Hr; [|unchanged Ht Ht' Hs']).
  all: try (destruct (decide (t = u)) as [->|Htu];
            [unfold running in Hr; rewrite Ht in Hr; simpl in Hr; discriminate|]).
  all: try solve [destruct (tcaps s !! (u, x)) as [[? ? r|?]|]; try solve [unchanged Ht Ht' Hs'];
                  try (destruct (t_write r); [|unchanged Ht Ht' Hs']); simpl in Ht';
                  rewrite lookup_insert_ne in Ht' by congruence; unchanged Ht Ht' Hs'].
  all: try solve [simpl in Ht'; rewrite lookup_insert_ne in Ht' by congruence; unchanged Ht Ht' Hs'].
  - destruct (tcaps s !! (u, x)) as [[ep2 b2 r|w]|] eqn:Hc; try solve [unchanged Ht Ht' Hs'].
    destruct (may_cancel r) eqn:Hm; [|unchanged Ht Ht' Hs'].
    rewrite cancel_sends_lookup, Ht in Ht'. simpl in Ht'. injection Ht' as <-.
    case_bool_decide as Hd; [|simpl in Hs'; congruence].
    destruct Hd as [-> [Hb|Hb]]; [discriminate|injection Hb as ->].
    right. exists u, x, r. repeat split; auto.
  - rewrite cancel_sends_lookup, Ht in Ht'. simpl in Ht'. injection Ht' as <-.
    case_bool_decide as Hd; [|simpl in Hs'; congruence].
    destruct Hd as [-> _]. left. reflexivity.
  - destruct (decide (t = u)) as [->|Htu].
    + rewrite Ht in Ht'. simpl in Ht'. unchanged Ht Ht' Hs'.
    + destruct (threads s !! u) as [[[|? ? ?|] ?]|]; simpl in Ht';
        try (rewrite lookup_insert_ne in Ht' by congruence); unchanged Ht Ht' Hs'.
  - destruct (tcaps s !! (u, x)) as [[? ? r|w]|]; try solve [unchanged Ht Ht' Hs'].
    destruct (threads s !! w) as [thw|] eqn:Hw; [|unchanged Ht Ht' Hs']. simpl in Ht'.
    destruct (decide (t = w)) as [->|Htw].
    + rewrite Ht in Hw. injection Hw as <-. rewrite lookup_insert in Ht'.
      injection Ht' as <-. simpl in Hs'. congruence.
    + rewrite lookup_insert_ne in Ht' by congruence. unchanged Ht Ht' Hs'.
Qed.

(** * A run *)

(** Thread 1 holds a full-rights badged endpoint cap (slot 0) and a send-only copy
    (slot 1); thread 2 faults on that endpoint with badge 5 with 42 in rax; thread 3
    sends on it through its own cap with badge 5. *)
Definition full : trights := TRights true true true.
Definition send_only : trights := TRights false true false.
Definition tinit : tstate :=
  TState (<[1 := Thread ThRunning 0]> (<[2 := Thread ThRunning 42]> (<[3 := Thread ThRunning 7]> ∅)))
         (<[(1, 0) := TcEndpoint 9 5 full]> (<[(1, 1) := TcEndpoint 9 5 send_only]>
          (<[(3, 0) := TcEndpoint 9 5 send_only]> ∅))).
Definition tblocked : tstate := tstep (tstep tinit (TFault 2 9 5)) (TSend 3 0).

Example run_send_only_refused : tstep tblocked (TCancel 1 1) = tblocked.
Proof. reflexivity. Qed.

Example run_cancel_fault_sender :
  threads (tstep tblocked (TCancel 1 0)) !! 2 = Some (Thread ThRestart 42) /\
  threads (tstep tblocked (TCancel 1 0)) !! 3 = Some (Thread ThRestart err_cancelled).
Proof. split; reflexivity. Qed.
