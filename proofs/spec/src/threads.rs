//! Mirror of Threads.v: send queues, fault messages and cancelling sends.
//!
//! The layer of the model for issue 9's hole 12, one item per Coq definition under
//! its name (`names.py` checks the lists match). The `mutant-hole12-rax` and
//! `mutant-hole12-rights` features apply check.sh's two hole-12 mutants.

use std::collections::BTreeMap;

use crate::model::Nat;

/// Rights on an endpoint cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TRights {
    /// Receive.
    pub t_read: bool,
    /// Send.
    pub t_write: bool,
    /// Grant.
    pub t_grant: bool,
}

/// Every right.
pub fn all_rights(r: TRights) -> bool {
    r.t_read && r.t_write && r.t_grant
}

/// A cap in a thread's CSpace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tcap {
    /// An endpoint (endpoint, badge, rights).
    TcEndpoint(Nat, Nat, TRights),
    /// A TCB (the thread it names).
    TcTcb(Nat),
}

/// A thread's scheduling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thstate {
    /// Running.
    ThRunning,
    /// Blocked sending (endpoint, badge, whether the message is a fault message).
    ThSending(Nat, Nat, bool),
    /// Made runnable by a cancel.
    ThRestart,
}

/// A thread: its state and rax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thread {
    /// The state.
    pub th_state: Thstate,
    /// rax.
    pub th_rax: Nat,
}

/// Threads and the caps in their CSpaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TState {
    /// Thread id -> thread.
    pub threads: BTreeMap<Nat, Thread>,
    /// (thread, slot) -> cap.
    pub tcaps: BTreeMap<(Nat, Nat), Tcap>,
}

/// The error a cancelled send system call returns in rax.
pub fn err_cancelled() -> Nat {
    1
}

/// The operations of this layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Top {
    /// Thread, slot: send and block.
    TSend(Nat, Nat),
    /// Thread, endpoint, badge: fault and block sending the fault message.
    TFault(Nat, Nat, Nat),
    /// Thread, slot: CancelBadgedSends.
    TCancel(Nat, Nat),
    /// The endpoint dies.
    TDeleteEp(Nat),
    /// Thread, value: user code sets rax.
    TRun(Nat, Nat),
    /// Thread, slot of a TCB cap, value: write that thread's rax.
    TWriteRegs(Nat, Nat, Nat),
}

/// What a cancelled send does to the sender.
pub fn cancel_thread(th: Thread) -> Thread {
    match th.th_state {
        Thstate::ThSending(_, _, fault) => {
            let keep = fault && !cfg!(feature = "mutant-hole12-rax");
            Thread { th_state: Thstate::ThRestart, th_rax: if keep { th.th_rax } else { err_cancelled() } }
        }
        _ => th,
    }
}

/// Cancels every send on `ep` with a badge `badge` names (`None`: any).
pub fn cancel_sends(s: &TState, ep: Nat, badge: Option<Nat>) -> TState {
    let threads = s
        .threads
        .iter()
        .map(|(&t, &th)| {
            let hit =
                matches!(th.th_state, Thstate::ThSending(e, b, _) if e == ep && (badge.is_none() || badge == Some(b)));
            (t, if hit { cancel_thread(th) } else { th })
        })
        .collect();
    TState { threads, tcaps: s.tcaps.clone() }
}

/// The thread, if it is running.
pub fn running(s: &TState, t: Nat) -> Option<Thread> {
    s.threads.get(&t).copied().filter(|th| th.th_state == Thstate::ThRunning)
}

/// CancelBadgedSends needs every right on the cap.
pub fn may_cancel(r: TRights) -> bool {
    if cfg!(feature = "mutant-hole12-rights") {
        return r.t_write;
    }
    all_rights(r)
}

/// One operation.
pub fn tstep(s: &TState, o: Top) -> TState {
    let with = |t: Nat, th: Thread| {
        let mut n = s.clone();
        n.threads.insert(t, th);
        n
    };
    match o {
        Top::TSend(t, x) => match (running(s, t), s.tcaps.get(&(t, x))) {
            (Some(th), Some(&Tcap::TcEndpoint(ep, b, r))) if r.t_write => {
                with(t, Thread { th_state: Thstate::ThSending(ep, b, false), th_rax: th.th_rax })
            }
            _ => s.clone(),
        },
        Top::TFault(t, ep, b) => match running(s, t) {
            Some(th) => with(t, Thread { th_state: Thstate::ThSending(ep, b, true), th_rax: th.th_rax }),
            None => s.clone(),
        },
        Top::TCancel(t, x) => match (running(s, t), s.tcaps.get(&(t, x))) {
            (Some(_), Some(&Tcap::TcEndpoint(ep, b, r))) if may_cancel(r) => cancel_sends(s, ep, Some(b)),
            _ => s.clone(),
        },
        Top::TDeleteEp(ep) => cancel_sends(s, ep, None),
        Top::TRun(t, v) => match s.threads.get(&t) {
            Some(th) if matches!(th.th_state, Thstate::ThRunning | Thstate::ThRestart) => {
                with(t, Thread { th_state: Thstate::ThRunning, th_rax: v })
            }
            _ => s.clone(),
        },
        Top::TWriteRegs(t, x, v) => match (running(s, t), s.tcaps.get(&(t, x))) {
            (Some(_), Some(&Tcap::TcTcb(u))) => match s.threads.get(&u) {
                Some(th) => with(u, Thread { th_state: th.th_state, th_rax: v }),
                None => s.clone(),
            },
            _ => s.clone(),
        },
    }
}

/// Every right.
pub fn full() -> TRights {
    TRights { t_read: true, t_write: true, t_grant: true }
}
/// Send only.
pub fn send_only() -> TRights {
    TRights { t_read: false, t_write: true, t_grant: false }
}
/// Thread 1 holds a full-rights badged endpoint cap (slot 0) and a send-only copy
/// (slot 1); threads 2 and 3 run, thread 3 with a send-only cap of its own.
pub fn tinit() -> TState {
    TState {
        threads: BTreeMap::from([
            (1, Thread { th_state: Thstate::ThRunning, th_rax: 0 }),
            (2, Thread { th_state: Thstate::ThRunning, th_rax: 42 }),
            (3, Thread { th_state: Thstate::ThRunning, th_rax: 7 }),
        ]),
        tcaps: BTreeMap::from([
            ((1, 0), Tcap::TcEndpoint(9, 5, full())),
            ((1, 1), Tcap::TcEndpoint(9, 5, send_only())),
            ((3, 0), Tcap::TcEndpoint(9, 5, send_only())),
        ]),
    }
}
/// Thread 2 faulted on endpoint 9 with badge 5; thread 3 sent on it.
pub fn tblocked() -> TState {
    tstep(&tstep(&tinit(), Top::TFault(2, 9, 5)), Top::TSend(3, 0))
}
