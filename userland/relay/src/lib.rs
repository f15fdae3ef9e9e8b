//! Relays of the services partition: a ring link up, a served port down.
//!
//! The sDDF split of the appliance (docs/appliance.md): between the bridge and a user
//! partition sit the filter (one component for every client, each with the rules the
//! description gives it) and a copier per client. Each is a chain of [`Hop`]s: the
//! client side of a connection upward (`netclient::Link`) and the served side of one
//! downward (`nicserve::Port`), frames copied between the two data regions, so the
//! partition's buffers are shared with its copier alone. A hop with rules passes only
//! what they allow (`netframe::filter`), and only to and from the client's own IPv4
//! address, and counts the rest; one without is a copier.
//! A client whose link upward is full keeps its frames in its own ring (the hop takes
//! none it cannot pass on), and frames for a client that offers no buffer are dropped
//! and counted, so neither side can stall the other. Idle, a relay blocks in one wait:
//! the description makes every notification it waits on one object (`shares`), else
//! the wait is bounded and the rings are polled.
#![no_std]

extern crate alloc;

use abi::component::{CapKind, ComponentInfo};
use abi::system::{FilterRule, RuleDirection};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capring::layout::net::NicInfo;
use libcap::deadline::Deadline;
use libcap::println;
use netclient::Link;
use netframe::filter::{allows, classify, keeps_to};
use nicserve::{Connection, Nic, Port, MAX_FRAME};

/// Longest idle wait in TSC ticks when the notifications are not one object.
const IDLE_TICKS: u64 = 2_000_000;
/// Drops logged one by one per hop; after that only counted.
const LOGGED_DROPS: u64 = 8;

/// Frames one hop passed and dropped, per direction (`[in, out]`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Frames passed.
    pub passed: [u64; 2],
    /// Well-formed frames no rule allows.
    pub denied: [u64; 2],
    /// Malformed frames (truncated, bad lengths or checksum, oversized).
    pub malformed: [u64; 2],
}

/// One client's relay: its link up, its port down, its rules (none: a copier).
pub struct Hop {
    /// The client's name (its connection upward).
    pub name: String,
    up: Link,
    down: Port,
    rules: Option<Vec<FilterRule>>,
    /// What passed and what was dropped.
    pub counts: Counts,
}

/// The upward link as the served port sees it: what the client sends goes up (if the
/// rules allow), what comes down goes to the client (if they allow).
struct Upward<'a> {
    name: &'a str,
    link: &'a mut Link,
    rules: Option<&'a [FilterRule]>,
    /// The client's own IPv4 address (its rules' address record).
    address: Option<[u8; 4]>,
    counts: &'a mut Counts,
}

impl Upward<'_> {
    /// Whether `frame` may go `direction`; counts and logs a drop.
    fn admit(&mut self, frame: &[u8], direction: RuleDirection) -> bool {
        let Some(rules) = self.rules else { return true };
        let d = direction.raw() as usize;
        let why = match classify(frame) {
            Ok(_) if self.address.is_some_and(|own| !keeps_to(frame, direction, own)) => {
                self.counts.denied[d] += 1;
                (self.counts.denied[d], String::from("not the client's own address"))
            }
            Ok(traffic) if allows(rules, direction, traffic) => return true,
            Ok(traffic) => {
                self.counts.denied[d] += 1;
                (self.counts.denied[d], format!("no rule allows {traffic:?}"))
            }
            Err(e) => {
                self.counts.malformed[d] += 1;
                (self.counts.malformed[d], format!("malformed: {}", e.0))
            }
        };
        if why.0 <= LOGGED_DROPS {
            let way = if direction == RuleDirection::In { "to" } else { "from" };
            println!("filter: dropped a {} byte frame {way} '{}': {}", frame.len(), self.name, why.1);
        }
        false
    }
}

impl Nic for Upward<'_> {
    type Error = String;

    fn mac(&self) -> [u8; 6] {
        self.link.mac
    }

    fn can_take(&mut self) -> bool {
        self.link.can_send().unwrap_or(false)
    }

    fn try_send(&mut self, frame: &[u8]) -> Result<bool, String> {
        if self.admit(frame, RuleDirection::Out) {
            self.link.queue(frame)?;
            self.counts.passed[1] += 1;
        }
        Ok(true)
    }

    fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, String> {
        while let Some(n) = self.link.take(out)? {
            if self.admit(&out[..n], RuleDirection::In) {
                self.counts.passed[0] += 1;
                return Ok(Some(n));
            }
        }
        Ok(None)
    }
}

impl Hop {
    /// Connects up to `<up>` and serves `<down>` (names of the description's
    /// connections) for client `name`, with `rules` (`None`: copy everything).
    /// `role` prefixes the port's log lines.
    pub fn open(
        info: &'static ComponentInfo,
        role: &'static str,
        name: &str,
        up: &str,
        down: &str,
        rules: Option<Vec<FilterRule>>,
    ) -> Result<Hop, String> {
        let mut link = netclient::connect_named(info, up)?;
        link.offer_receive_buffers()?;
        let conn = Connection::find_named(info, down)
            .ok_or(format!("'{name}': needs {down}-queues, {down}-data (writable), {down}-tx and {down}-rx"))?;
        let nic = NicInfo { mac: link.mac, flags: 0, max_frame: MAX_FRAME.min(link.max_frame) };
        let port = Port::open(role, &conn, nic).map_err(|e| format!("'{name}': serving {down}: {e:?}"))?;
        Ok(Hop { name: String::from(name), up: link, down: port, rules, counts: Counts::default() })
    }

    /// Moves what can move both ways; whether anything moved.
    pub fn step(&mut self) -> Result<bool, String> {
        let address = self.rules.as_deref().and_then(|r| r.iter().find_map(FilterRule::address));
        let mut upward = Upward {
            name: &self.name,
            link: &mut self.up,
            rules: self.rules.as_deref(),
            address,
            counts: &mut self.counts,
        };
        let moved = self.down.step(&mut upward).map_err(|e| format!("'{}': {e}", self.name));
        // One signal upward for the whole round (frames queued, buffers re-offered).
        self.up.flush();
        moved
    }

    /// Raises the waiting flags of every ring this hop consumes; `true` if all are
    /// still empty (then it may sleep).
    fn prepare_wait(&mut self) -> Result<bool, String> {
        let ring = |e| format!("'{}': ring: {e:?}", self.name);
        let received = self.up.ends.rx_active.prepare_wait().map_err(ring)?;
        // Take back the sent buffers that came (an unclaimed entry would end every
        // wait at once). With none free, the client's queued frames cannot move: wait
        // for a buffer to come back, not for the client (its pending frames would end
        // every wait at once and spin the relay); otherwise wait for the client.
        self.up.reclaim()?;
        let ready = if self.up.tx_idle.is_empty() {
            self.up.ends.tx_free.prepare_wait().map_err(ring)?
        } else {
            self.down.prepare_wait().map_err(ring)?
        };
        Ok(received && ready)
    }

    fn done_waiting(&mut self) {
        self.down.done_waiting();
        self.up.ends.rx_active.done_waiting();
        self.up.ends.tx_free.done_waiting();
    }

    /// The notification its link upward signals.
    fn wake_cap(&self) -> u64 {
        self.up.from_driver
    }

    /// The rules it applies (`None`: a copier).
    pub fn rules(&self) -> Option<&[FilterRule]> {
        self.rules.as_deref()
    }
}

/// Runs `hops` until a ring fails; `publish(hops, idle)` is called after every round
/// that moved something (`idle` false) and before every sleep (`idle` true).
pub fn run(info: &ComponentInfo, hops: &mut [Hop], mut publish: impl FnMut(&[Hop], bool)) -> Result<(), String> {
    let wake = hops.first().map(Hop::wake_cap).ok_or("no clients to relay")?;
    let others: Vec<u64> = hops.iter().flat_map(|h| [h.up.from_driver, h.down.from_client()]).collect();
    let blocking = nicserve::one_object(info, wake, &others);
    if !blocking {
        println!("relay: its notifications are not one object (no `shares` in the description): polling");
    }
    loop {
        let mut progress = false;
        for hop in hops.iter_mut() {
            progress |= hop.step()?;
        }
        if progress {
            publish(hops, false);
            continue;
        }
        publish(hops, true);
        let mut idle = true;
        for hop in hops.iter_mut() {
            idle &= hop.prepare_wait()?;
        }
        if idle && blocking {
            let _ = libcap::ipc::wait(wake);
        } else if idle {
            let _ = libcap::ipc::wait_until(wake, Deadline::after(IDLE_TICKS));
        }
        for hop in hops.iter_mut() {
            hop.done_waiting();
        }
    }
}

/// The names of the connections `info` holds that end in `suffix` (the part before
/// it), e.g. `web` for `web-filtered-queues` with suffix `-filtered-queues`.
pub fn connections<'a>(info: &'a ComponentInfo, suffix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    info.caps().iter().filter(|c| c.kind() == Some(CapKind::Region)).filter_map(move |c| c.name().strip_suffix(suffix))
}

/// The description's rules for client `name`, checked (a bad one is an error).
pub fn rules_for(info: &ComponentInfo, name: &str) -> Result<Vec<FilterRule>, String> {
    let entries = info.caps().iter().filter(|c| c.kind() == Some(CapKind::FilterRule) && c.name() == name);
    entries
        .map(|c| FilterRule::from_word(c.size).ok_or(format!("rule {:#x} for '{name}' is invalid", c.size)))
        .collect()
}
