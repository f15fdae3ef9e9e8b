//! Checks that a Reply carries a cap only to a caller that opted in.
//!
//! A server answers every Call with a reply carrying a copy of its frame cap. The
//! caller gets it only if its Call was made through a cap with GRANT (recorded at Call
//! time, by the slow path and the fastpath alike) and it named an empty receive slot;
//! otherwise the reply arrives with `extra_caps` 0 and the caller's CSpace is
//! untouched. The received cap is derived from the server's, so revoking the frame's
//! original cap takes the caller's copy too (what `dma_free` relies on).

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use libcap::abi::msginfo::MessageInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame};
use libcap::check::Checker;
use libcap::ipc;
use libcap::thread::spawn;

/// The server's endpoint and the frame cap it hands out (the original, as retyped).
static EP: AtomicU64 = AtomicU64::new(0);
static SERVER_FRAME: AtomicU64 = AtomicU64::new(0);

/// Replies to every call with [frame address] and its frame cap as the extra cap.
extern "C" fn server(_: u64) -> ! {
    let ep = EP.load(SeqCst);
    let frame = SERVER_FRAME.load(SeqCst);
    let addr = Frame(frame).address().unwrap_or(0);
    let mut msg = ipc::recv(ep);
    loop {
        if msg.is_err() {
            msg = ipc::recv(ep);
            continue;
        }
        ipc::set_extra_cap(frame);
        let info = MessageInfo { label: 0x77, caps_unwrapped: 0, extra_caps: 1, length: 1 };
        msg = ipc::reply_recv(ep, info, [addr, 0, 0, 0]);
    }
}

/// One Call through `cap` (with `length` registers: 5 forces the slow path) naming
/// `slot` (0: none) as receive slot: (reply label, extra caps delivered, mr0).
fn call(cap: u64, slot: u64, length: u8) -> (u64, u8, u64) {
    match slot {
        0 => ipc::set_receive_slot(0, 0, 0),
        s => ipc::set_receive_slot(slots::INIT_CNODE, s, 64),
    }
    match ipc::call(cap, MessageInfo::new(1, length), [0; 4]) {
        Ok(m) => (m.info.label, m.info.extra_caps, m.mrs[0]),
        Err(_) => (0, 0, 0),
    }
}

/// Runs the reply-with-cap checks (`region`: free virtual space for the server thread).
pub fn run(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, region: u64) {
    let root = CNode(slots::INIT_CNODE);
    let slot = || slots.alloc().expect("slot");
    let (Ok(ep), Ok(frame)) =
        (objects.alloc(slots, ObjectType::Endpoint, 0), objects.alloc(slots, ObjectType::Frame4K, 0))
    else {
        c.check("reply cap: objects for the test", false);
        return;
    };
    // The server hands out copies of the frame's original cap (as retyped), so revoking
    // that cap reaches every copy it replied with.
    let addr = Frame(frame).address().unwrap_or(1);
    EP.store(ep, SeqCst);
    SERVER_FRAME.store(frame, SeqCst);
    let (grant, no_grant) = (slot(), slot());
    let minted = CNode::mint(root.slot(grant), root.slot(ep), CapRights::WRITE.union(CapRights::GRANT), 1).is_ok()
        && CNode::mint(root.slot(no_grant), root.slot(ep), CapRights::WRITE, 2).is_ok();
    c.check("reply cap: mint a grant and a plain send cap", minted);
    // Lower priority than the caller: the first Call blocks as a sender (slow path).
    if spawn(objects, slots, server, 0, 100, region, 0).is_err() {
        c.check("reply cap: spawn the server", false);
        return;
    }
    let received = |s: u64| Frame(s).address().ok();
    let r1 = slot();
    c.check(
        "reply cap: Call with GRANT (blocked send) gets the cap in its empty slot",
        call(grant, r1, 1) == (0x77, 1, addr) && received(r1) == Some(addr),
    );
    let r2 = slot();
    c.check(
        "reply cap: Call with GRANT (fastpath call) gets the cap",
        call(grant, r2, 1) == (0x77, 1, addr) && received(r2) == Some(addr),
    );
    let r3 = slot();
    c.check(
        "reply cap: Call with GRANT (slow path, 5 registers) gets the cap",
        call(grant, r3, 5) == (0x77, 1, addr) && received(r3) == Some(addr),
    );
    let r4 = slot();
    c.check(
        "reply cap: Call without GRANT: reply arrives, no cap, slot stays empty",
        call(no_grant, r4, 1) == (0x77, 0, addr) && received(r4).is_none(),
    );
    c.check(
        "reply cap: Call without GRANT on the slow path: no cap",
        call(no_grant, r4, 5) == (0x77, 0, addr) && received(r4).is_none(),
    );
    c.check("reply cap: Call with GRANT but no receive slot: no cap", call(grant, 0, 1) == (0x77, 0, addr));
    // An occupied receive slot is never overwritten: it keeps another frame's cap.
    let occupied = slot();
    let Ok(other) = objects.alloc(slots, ObjectType::Frame4K, 0) else {
        c.check("reply cap: a second frame", false);
        return;
    };
    let other_addr = Frame(other).address().ok();
    let _ = CNode::move_cap(root.slot(occupied), root.slot(other));
    c.check(
        "reply cap: Call with GRANT into an occupied slot: no cap, slot unchanged",
        call(grant, occupied, 1) == (0x77, 0, addr) && other_addr.is_some() && received(occupied) == other_addr,
    );
    // The copies are children of the frame's original cap: its revoke removes them.
    c.check(
        "reply cap: revoking the frame's original cap removes every copy replied with",
        CNode::revoke(root.slot(frame)).is_ok() && [r1, r2, r3].iter().all(|&s| received(s).is_none()),
    );
}
