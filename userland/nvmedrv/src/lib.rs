//! The `nvmedrv` component: an NVMe controller driven through its DMA pool.
//!
//! Init gives it a send cap to the iommu-server for its device (`IommuClient`), the
//! device's BAR 0 (a `DeviceFrame` entry: the whole BAR but the MSI-X table and PBA
//! pages) and its spare budget. Every queue, Identify page, PRP list and data buffer
//! is a `dma_alloc` buffer (IOVAs the device uses, frames mapped in the driver). It
//! asks the server for an interrupt (the device's MSI-X entry 0: admin and I/O
//! completions both use it) and falls back to polling the completion phase tag if
//! there is none. Then: Identify Controller and Namespace 1, one I/O queue pair, a
//! read of LBA 0 (what the host put there), a 16 KiB write at [`WRITE_LBA`] through a
//! PRP list, a flush, and a read back compared byte for byte. Markers in `main`.
#![no_std]

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use abi::pci;
use abi::rights::CapRights;
use libcap::cap::{IrqHandler, Notification};
use libcap::deadline::Deadline;
use libcap::iommu::DmaBuffer;
use libcap::{ipc, println};
use nvme_driver::identify::text;
use nvme_driver::{Controller, DmaRegion, NvmeError, PAGE};

mod rogue;
mod serve;

/// What the program does besides the self-test.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `nvmedrv`: the self-test.
    Normal,
    /// `nvmedrv-rogue`: the fault scenarios ([`rogue`]).
    Rogue,
    /// `nvmedrv-bench`: after the self-test, 4 KiB reads and writes timed (`make bench`).
    Bench,
}

/// Timed 4 KiB transfers per direction in [`Mode::Bench`].
const BENCH_RUNS: usize = 32;
/// Where the benchmark's transfers go (past the self-test's LBAs).
const BENCH_LBA: u64 = 256;

/// Times [`BENCH_RUNS`] 4 KiB writes and reads (each from submission to its checked
/// completion, interrupts included) and prints `bench:` lines for the host runner.
fn bench(
    c: &mut Controller,
    data: DmaRegion,
    list: DmaRegion,
    block_size: u32,
    pause: &mut dyn FnMut() -> bool,
) -> Result<(), &'static str> {
    let blocks = (PAGE / u64::from(block_size)) as u32;
    for (name, write) in
        [("NVMe 4 KiB write (submit -> completion)", true), ("NVMe 4 KiB read (submit -> completion)", false)]
    {
        let mut samples = [0u64; BENCH_RUNS];
        for s in samples.iter_mut() {
            let t0 = libcap::deadline::now();
            c.transfer(write, BENCH_LBA, blocks, data, list, pause).map_err(nvme("bench transfer"))?;
            *s = libcap::deadline::now() - t0;
        }
        samples.sort_unstable();
        println!("bench: {name} min={} median={} runs={}", samples[0], samples[BENCH_RUNS / 2], BENCH_RUNS);
    }
    Ok(())
}

/// Where the driver maps its DMA buffers.
const DMA_VADDRS: core::ops::Range<u64> = 0x0000_5400_0000_0000..0x0000_5400_0100_0000;
/// The LBA the test pattern goes to (the host checks the disk image there).
pub const WRITE_LBA: u64 = 64;
/// Bytes written and read back: four pages, so PRP2 is a PRP list.
pub const TRANSFER: u64 = 4 * PAGE;

/// How completions are awaited.
struct Waiter {
    /// The notification the MSI-X handler signals (0: polling).
    ntfn: u64,
    handler: Option<IrqHandler>,
    /// Interrupts seen.
    interrupts: u64,
    /// Consecutive waits that saw neither an interrupt nor a deadline reset.
    silent: u32,
}

/// One wait for an interrupt lasts at most this many TSC ticks; then the driver looks
/// at the completion queue anyway (a lost interrupt costs this, never a hang).
const PAUSE_TICKS: u64 = 50_000_000;
/// Consecutive silent waits (about 2.5e9 ticks, a second or more) before a command is
/// given up as timed out: the device is not answering.
const MAX_SILENT: u32 = 50;

impl Waiter {
    /// Between two looks at a completion queue: with MSI-X, wait (bounded) for the
    /// handler's signal, then ack it so the next one comes; else let others run.
    /// Returns false once the device has been silent too long (the command fails).
    fn pause(&mut self) -> bool {
        match self.handler {
            Some(handler) => {
                match ipc::wait_until(self.ntfn, Deadline::after(PAUSE_TICKS)) {
                    Ok(Some(_)) => {
                        self.interrupts += 1;
                        self.silent = 0;
                    }
                    _ => self.silent += 1,
                }
                let _ = handler.ack();
                self.silent < MAX_SILENT
            }
            None => {
                ipc::yield_now();
                true
            }
        }
    }
}

/// The component's body; `mode` chooses the program.
pub fn main(info: &'static ComponentInfo, mode: Mode) -> ExitCode {
    match run(info, mode) {
        Ok(()) => ExitCode::Success,
        Err(what) => {
            println!("nvmedrv: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

pub(crate) fn as_str(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("?")
}

pub(crate) fn region(b: &DmaBuffer, page: u64, pages: u64) -> DmaRegion {
    DmaRegion { vaddr: b.vaddr + page * PAGE, iova: b.iova + page * PAGE, bytes: pages * PAGE }
}

fn nvme(what: &'static str) -> impl Fn(NvmeError) -> &'static str {
    move |e| {
        println!("nvmedrv: {what}: {e}");
        what
    }
}

fn run(info: &'static ComponentInfo, mode: Mode) -> Result<(), &'static str> {
    let client =
        info.caps().iter().find(|c| c.kind() == Some(CapKind::IommuClient)).ok_or("no iommu-server client cap")?;
    let bar = info
        .caps()
        .iter()
        .find(|c| c.kind() == Some(CapKind::DeviceFrame) && c.badge == 0 && c.name() == client.name())
        .ok_or("no BAR 0 for the device")?;
    println!(
        "nvmedrv: device {}: BAR0 {:#x} bytes at {:#x} (gen {})",
        client.name(),
        bar.size,
        bar.vaddr,
        info.generation
    );
    let libcap::iommu::DriverClient { client: mut iommu, ntfn, badged, .. } =
        libcap::iommu::driver_client(info, DMA_VADDRS, 256)?;
    let command = iommu.config_read(pci::COMMAND, 2).map_err(|_| "config read of the command register")?;
    iommu
        .config_write(pci::COMMAND, 2, command | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER)
        .map_err(|_| "enable bus mastering (boot with iommu=allow-unremapped-dma on QEMU 7.2)")?;
    let mut waiter = Waiter { ntfn, handler: None, interrupts: 0, silent: 0 };
    let rw = CapRights::READ.union(CapRights::WRITE);
    let queues = iommu.dma_alloc(4 * PAGE, rw).map_err(|_| "dma_alloc of the queues")?;
    let pages = iommu.dma_alloc(2 * PAGE, rw).map_err(|_| "dma_alloc of the identify and PRP list pages")?;
    let out = iommu.dma_alloc(TRANSFER, rw).map_err(|_| "dma_alloc of the write buffer")?;
    let back = iommu.dma_alloc(TRANSFER, rw).map_err(|_| "dma_alloc of the read buffer")?;
    println!("nvmedrv: queues at iova {:#x}, data at iova {:#x} and {:#x}", queues.iova, out.iova, back.iova);
    let mut pause = || waiter.pause();
    // SAFETY: init mapped the device's BAR 0 uncached at `bar.vaddr` (`bar.size` bytes,
    // the MSI-X pages aside, which the controller's registers and doorbells precede) for
    // this component alone; the queue pages are DMA buffers of this driver, used for
    // nothing else.
    let mut c =
        unsafe { Controller::enable(bar.vaddr, bar.size, region(&queues, 0, 1), region(&queues, 1, 1), &mut pause) }
            .map_err(nvme("enable"))?;
    let limits = c.limits();
    println!(
        "nvmedrv: controller enabled: version {:#x}, {} entries per queue, doorbell stride {}",
        c.version(),
        limits.queue_entries,
        limits.doorbell_stride
    );
    // Completions by MSI-X: the server programs entry 0 for us; without it, poll.
    let vector = match iommu.msi() {
        Ok((handler, msi)) => {
            handler.set_notification(Notification(badged)).map_err(|_| "bind the MSI-X handler")?;
            handler.msix_mask(false).map_err(|_| "unmask the MSI-X entry")?;
            waiter.handler = Some(handler);
            println!("nvmedrv: completions by MSI-X entry {} vector {:#x}", msi.data, msi.vector);
            Some(msi.data as u16)
        }
        Err(e) => {
            println!("nvmedrv: no MSI-X from the server ({e:?}): polling the completion phase tag");
            None
        }
    };
    let mut pause = || waiter.pause();
    let id = c.identify_controller(region(&pages, 0, 1), &mut pause).map_err(nvme("identify controller"))?;
    let mut model = [0u8; 40];
    let model_len = text(&id.model).zip(model.iter_mut()).map(|(ch, b)| *b = ch as u8).count();
    let mut serial = [0u8; 20];
    let serial_len = text(&id.serial).zip(serial.iter_mut()).map(|(ch, b)| *b = ch as u8).count();
    println!(
        "nvmedrv: identify: model '{}' serial '{}' vendor {:#06x}, {} namespaces, mdts {}",
        as_str(&model[..model_len]),
        as_str(&serial[..serial_len]),
        id.vid,
        id.namespaces,
        id.mdts
    );
    let ns = c.identify_namespace(1, region(&pages, 0, 1), &mut pause).map_err(nvme("identify namespace"))?;
    println!("nvmedrv: namespace 1: {} blocks of {} bytes", ns.blocks, ns.block_size);
    c.create_io_queues(region(&queues, 2, 1), region(&queues, 3, 1), vector, &mut pause)
        .map_err(nvme("create I/O queues"))?;
    println!("nvmedrv: I/O queue pair 1 created");
    if mode == Mode::Rogue && info.generation == 1 {
        return rogue::generation_one(&mut c, [&pages, &out, &back], &mut pause);
    }
    if let Some(conn) = serve::Connection::find(info) {
        let disk = serve::Disk {
            blocks: ns.blocks,
            block_size: ns.block_size,
            bounce: region(&out, 0, 4),
            list: region(&pages, 1, 1),
        };
        return serve::serve(&mut c, &disk, &conn, &mut pause).map_err(|e| {
            println!("nvmedrv: the client's rings: {e:?}");
            "serving the client"
        });
    }
    let list = region(&pages, 1, 1);
    let blocks = (TRANSFER / u64::from(ns.block_size)) as u32;
    // LBA 0: what the host wrote into the image before boot.
    c.transfer(false, 0, 1, region(&back, 0, 1), list, &mut pause).map_err(nvme("read LBA 0"))?;
    let mut head = [0u8; 24];
    for (i, b) in head.iter_mut().enumerate() {
        // SAFETY: `back` is a DMA buffer of TRANSFER bytes mapped at its vaddr.
        *b = unsafe { ((back.vaddr + i as u64) as *const u8).read_volatile() };
    }
    let printable = head.iter().take_while(|b| b.is_ascii_graphic() || **b == b' ').count();
    println!("nvmedrv: LBA 0 reads '{}'", as_str(&head[..printable]));
    // The pattern: a header naming the generation, then bytes the host recomputes.
    let byte = |i: u64| (i.wrapping_mul(7) ^ (i >> 9)) as u8;
    for i in 0..TRANSFER {
        // SAFETY: `out` and `back` are DMA buffers of TRANSFER bytes mapped at their vaddr.
        unsafe {
            ((out.vaddr + i) as *mut u8).write_volatile(byte(i));
            ((back.vaddr + i) as *mut u8).write_volatile(0);
        }
    }
    c.transfer(true, WRITE_LBA, blocks, region(&out, 0, 4), list, &mut pause).map_err(nvme("write"))?;
    c.flush(&mut pause).map_err(nvme("flush"))?;
    c.transfer(false, WRITE_LBA, blocks, region(&back, 0, 4), list, &mut pause).map_err(nvme("read back"))?;
    // SAFETY: as above.
    let bad = (0..TRANSFER).find(|&i| unsafe { ((back.vaddr + i) as *const u8).read_volatile() } != byte(i));
    if let Some(i) = bad {
        println!("nvmedrv: read back differs at byte {i}");
        return Err("the data read back is not what was written");
    }
    println!("nvmedrv: wrote {TRANSFER} bytes at LBA {WRITE_LBA} through a PRP list, flushed, read them back: match");
    if mode == Mode::Rogue {
        rogue::stale_read(&mut c, [&pages, &back], &mut pause)?;
    }
    if mode == Mode::Bench {
        bench(&mut c, region(&out, 0, 1), list, ns.block_size, &mut pause)?;
    }
    let interrupts = waiter.interrupts;
    println!("nvmedrv: {} completions, {} MSI-X interrupts", c.completions, interrupts);
    Ok(())
}
