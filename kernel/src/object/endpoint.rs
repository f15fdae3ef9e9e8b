//! Endpoint and notification objects as they lie in memory.
//!
//! Endpoint and notification objects as they lie in memory: a wait queue (head and tail
//! TCB addresses) plus a state, and for notifications the signal word and bound thread.

use abi::rights::CapRights;

use crate::thread::sched::Queue;

/// What an endpoint's queue holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointState {
    /// Nobody waits.
    Idle,
    /// Senders wait.
    Sending,
    /// Receivers wait.
    Receiving,
}

/// An endpoint (16 bytes): `[head, tail | state]`. TCBs are 2 KiB aligned, so the low
/// bits of the tail carry the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Waiting threads.
    pub queue: Queue,
    /// Which kind of thread waits.
    pub state: EndpointState,
}

impl Endpoint {
    /// Decodes the stored words.
    pub fn from_words(w: [u64; 2]) -> Self {
        let state = match w[1] & 3 {
            1 => EndpointState::Sending,
            2 => EndpointState::Receiving,
            _ => EndpointState::Idle,
        };
        Endpoint { queue: Queue { head: w[0], tail: w[1] & !3 }, state }
    }

    /// Encodes for storage; an empty queue is always Idle.
    pub fn to_words(self) -> [u64; 2] {
        let state = if self.queue.is_empty() {
            0
        } else {
            match self.state {
                EndpointState::Idle => 0,
                EndpointState::Sending => 1,
                EndpointState::Receiving => 2,
            }
        };
        [self.queue.head, self.queue.tail | state]
    }
}

/// A notification (32 bytes): `[word, head, tail | waiting, bound thread]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Badges signalled and not yet collected (OR-ed).
    pub word: u64,
    /// Threads waiting.
    pub queue: Queue,
    /// Thread bound to it (its Recv on an endpoint also collects this notification).
    pub bound: u64,
}

impl Notification {
    /// Decodes the stored words.
    pub fn from_words(w: [u64; 4]) -> Self {
        Notification { word: w[0], queue: Queue { head: w[1], tail: w[2] & !3 }, bound: w[3] }
    }

    /// Encodes for storage.
    pub fn to_words(self) -> [u64; 4] {
        [self.word, self.queue.head, self.queue.tail, self.bound]
    }
}

/// Whether an endpoint cap with `rights` may cancel other threads' badged sends
/// (CancelBadgedSends; seL4's `hasCancelSendRights`): only one with every right, not a
/// send-only cap (issue 9 hole 12).
pub fn may_cancel_sends(rights: CapRights) -> bool {
    if cfg!(feature = "mutant-hole12") {
        rights.contains(CapRights::WRITE)
    } else {
        rights.contains(CapRights::ALL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9 hole 12, second half: a WRITE-only badged cap cancelled other senders.
    #[test]
    fn hole12_only_a_cap_with_every_right_cancels_sends() {
        assert!(may_cancel_sends(CapRights::ALL));
        assert!(!may_cancel_sends(CapRights::WRITE), "a send-only cap cancels other senders' messages");
        assert!(!may_cancel_sends(CapRights::READ.union(CapRights::WRITE)));
    }

    #[test]
    fn round_trips() {
        let e = Endpoint { queue: Queue { head: 0x1000, tail: 0x1800 }, state: EndpointState::Receiving };
        assert_eq!(Endpoint::from_words(e.to_words()), e);
        let idle = Endpoint { queue: Queue::default(), state: EndpointState::Sending };
        assert_eq!(Endpoint::from_words(idle.to_words()).state, EndpointState::Idle);
        let n = Notification { word: 0b101, queue: Queue { head: 0x800, tail: 0x800 }, bound: 0x2000 };
        assert_eq!(Notification::from_words(n.to_words()), n);
    }
}
