//! The appliance attacked from two sides in one run: rogue DMA and a NIC crash.
//!
//! `systems/test-appliance-attack.toml`: the rogue edu device (`edudrv-rogue-targets`)
//! writes by physical address into `udpecho`'s canary page (an address it learns
//! read-only, with no cap to the page) and into the kernel image (its ELF load
//! address), while the NIC driver (`e1000edrv-flaky`) crashes once under the host's
//! traffic and is restarted. The host talks to both services over forwarded ports all
//! along; then it reads the canary page and the kernel's first bytes out of the
//! guest's RAM through QEMU's monitor and checks that neither changed, and that
//! management reported each write at exactly the address targeted, restarted the rogue
//! once and cut it off.

use std::time::Duration;

use elf::abi::PT_LOAD;
use elf::endian::AnyEndian;
use elf::ElfBytes;
use scenarios::net::{forwarded, http_get, http_request, note_in_log, udp_echo, wait_for_log};
use scenarios::{build_dir, monitor, scenario_dir};

/// Rounds of one HTTP request and one datagram before the crash-and-restart is awaited.
const ROUNDS: usize = 8;
/// Bytes the rogue writes at each target (`edudrv`'s `targets::WRITE_BYTES`).
const WRITE_BYTES: usize = 64;

/// The kernel ELF's first load segment: its physical address and its first bytes.
fn kernel_image_start() -> (u64, Vec<u8>) {
    let bytes = std::fs::read(build_dir().join("kernel.elf")).expect("build/kernel.elf: run `make image` first");
    let file = ElfBytes::<AnyEndian>::minimal_parse(&bytes).expect("the kernel ELF parses");
    let first = file
        .segments()
        .expect("program headers")
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_filesz as usize >= WRITE_BYTES)
        .min_by_key(|p| p.p_paddr)
        .expect("a load segment");
    let at = first.p_offset as usize;
    (first.p_paddr, bytes[at..at + WRITE_BYTES].to_vec())
}

/// One round's HTTP answer and UDP echo.
type Round = (Result<String, String>, Result<Vec<u8>, String>);

/// What the host saw.
struct HostView {
    answers: Vec<Round>,
    last_page: Result<String, String>,
    canary: Result<Vec<u8>, String>,
    kernel: Result<Vec<u8>, String>,
}

/// `udpecho`'s canary pattern (its `canary::pattern`), as bytes.
fn canary_pattern() -> Vec<u8> {
    (0..512u64).flat_map(|i| (0xca4a_7259_0000_0000u64 | i).to_le_bytes()).collect()
}

/// The payload of datagram `i`: unique, so an answer from anywhere else shows.
fn payload(i: usize) -> Vec<u8> {
    format!("attack round {i}: echo me").into_bytes()
}

/// The number after `key` in `line` (hex with 0x).
fn hex_after(line: &str, key: &str) -> u64 {
    let at = line.find(key).unwrap_or_else(|| panic!("no '{key}' in: {line}")) + key.len();
    let digits: String = line[at..].trim_start_matches("0x").chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    u64::from_str_radix(&digits, 16).unwrap_or_else(|_| panic!("no hex number after '{key}' in: {line}"))
}

#[test]
fn rogue_dma_is_blocked_while_the_nic_driver_restarts_under_traffic() {
    let (mut scenario, [tcp, udp, _], log) = forwarded("attack", "test-appliance-attack");
    let socket = scenario_dir().join("attack.mon");
    let _ = std::fs::remove_file(&socket);
    scenario.extra_args.extend(["-device".to_string(), "edu".to_string()]);
    scenario.extra_args.extend(monitor::args(&socket));
    scenario.timeout = Duration::from_secs(420);
    scenario.stop_at = vec!["host: done".to_string()];
    let (kernel_paddr, kernel_bytes) = kernel_image_start();
    let client = std::thread::spawn(move || -> Result<HostView, String> {
        wait_for_log(&log, &["httpd: listening on", "udpecho: echoing on"], Duration::from_secs(180))?;
        let mut answers: Vec<_> = (0..ROUNDS).map(|i| (http_get(tcp), udp_echo(udp, &payload(i)))).collect();
        // Both attacks over (the rogue cut off, the NIC driver back), then once more.
        let serial = wait_for_log(
            &log,
            &["management: device rogue cut off", "init: restarted e1000e-driver: generation 2"],
            Duration::from_secs(120),
        )?;
        answers.push((http_get(tcp), udp_echo(udp, &payload(ROUNDS))));
        let line =
            serial.lines().find(|l| l.starts_with("udpecho: canary page at physical ")).ok_or("no canary line")?;
        let canary = hex_after(line, "physical ");
        let view = HostView {
            answers,
            last_page: http_request(tcp, b"GET /status.txt HTTP/1.0\r\n\r\n", Duration::from_secs(60)),
            canary: monitor::read_physical(&socket, canary, 4096),
            kernel: monitor::read_physical(&socket, kernel_paddr, WRITE_BYTES),
        };
        note_in_log(&log, "host: done");
        Ok(view)
    });
    let o = scenario.run();
    let tail = scenarios::tail(&o.serial, 40);
    let host = client.join().expect("the host client").unwrap_or_else(|e| panic!("host: {e}\n{tail}"));
    assert!(!o.timed_out, "the run timed out before the host was done:\n{tail}");

    // The host was answered by the right partition every time, before and after.
    for (i, (page, echo)) in host.answers.iter().enumerate() {
        let page = page.as_ref().unwrap_or_else(|e| panic!("HTTP request {i}: {e}\n{tail}"));
        assert!(
            page.starts_with("HTTP/1.0 200 OK\r\n") && page.contains("user partition httpd"),
            "request {i}: {page}"
        );
        assert!(!page.contains("attack round"), "request {i}: a datagram's bytes in httpd's page: {page}");
        assert_eq!(echo.as_deref(), Ok(&payload(i)[..]), "echo {i}:\n{tail}");
    }
    let crash = o.serial.find("e1000e: flaky: crashing in the middle of the client's traffic").expect("the NIC crash");
    let restart = o.serial.find("init: restarted e1000e-driver: generation 2").expect("the NIC restart");
    assert!(o.serial[..crash].contains("httpd: request 1: "), "nothing answered before the crash");
    assert!(o.serial[restart..].contains("httpd: request "), "nothing answered after the restart");
    assert!(o.serial[restart..].contains("udpecho: datagram "), "no echo after the restart");
    o.expect_serial_contains("management: CPU fault in e1000e-driver: ");

    // The rogue learnt the canary's address and wrote there, then to the kernel image.
    let canary_line = o.expect_line_starting("udpecho: canary page at physical ");
    let canary = hex_after(canary_line, "physical ");
    assert!(canary < 1 << 28, "the canary {canary:#x} is beyond edu's 28-bit DMA mask: the write would land elsewhere");
    assert_eq!(kernel_paddr, 0x20_0000, "the kernel ELF's load address moved: update edudrv's KERNEL_IMAGE_PADDR");
    o.expect_serial_contains(&format!(
        "edudrv: rogue-targets: writing 64 bytes to udpecho's canary page at physical {canary:#x}"
    ))
    .expect_serial_contains(&format!(
        "edudrv: rogue-targets: writing 64 bytes to the kernel image at physical {kernel_paddr:#x} (gen 2)"
    ));
    // VT-d blocked both; management got each at exactly the address targeted, with the
    // driver's name; it restarted the rogue once, then cut the device off.
    let faults = o.lines_starting("management: DMA fault from rogue-driver (device rogue ");
    assert!(faults.len() >= 2, "{faults:?}\n{tail}");
    assert!(
        faults[0].contains(&format!("iova {canary:#x}, reason 0x5 ")) && faults[0].ends_with("policy restart (1 of 1)"),
        "{}",
        faults[0]
    );
    assert!(
        faults[1].contains(&format!("iova {kernel_paddr:#x}, reason 0x5 "))
            && faults[1].ends_with("policy restart: limit (1) reached, cut-off"),
        "{}",
        faults[1]
    );
    o.expect_serial_contains("management: restarted rogue-driver: generation 2")
        .expect_serial_contains("management: device rogue cut off: it stays unassigned (ok)")
        .expect_serial_contains("edudrv: device cut off: the server refuses its requests (CutOff)");

    // Nothing changed where the rogue wrote: read from outside the guest.
    let canary_now = host.canary.unwrap_or_else(|e| panic!("the canary page: {e}"));
    assert!(canary_now == canary_pattern(), "udpecho's canary page at {canary:#x} changed: {:02x?}", &canary_now[..64]);
    let kernel_now = host.kernel.unwrap_or_else(|e| panic!("the kernel image: {e}"));
    assert_eq!(kernel_now, kernel_bytes, "the kernel image at {kernel_paddr:#x} differs from the ELF");
    // ... and the partition checked its canary after the write, still serving.
    let write = o.serial.find(faults[0]).expect("the first fault");
    assert!(
        o.serial[write..].lines().any(|l| l.starts_with("udpecho: datagram ") && l.ends_with("; canary intact")),
        "no canary check after the rogue's write:\n{tail}"
    );

    // The counts, on management's status page as the host reads it.
    let page = host.last_page.unwrap_or_else(|e| panic!("the last page: {e}"));
    let counters = "# Faults handled by management\n! DMA faults | restarts | cut-offs | CPU faults | DMA reports lost | CPU reports lost\n2 | 1 | 1 | 1 | 0 | 0\n";
    assert!(page.contains(counters), "{page}");
    assert!(page.contains("rogue | rogue-driver | its own IOSpace | restart | 1 of 1 | cut off"), "{page}");
    // Only the NIC driver crashed (once); nobody else faulted or failed.
    let crashes = o.lines_starting("init: fault in ");
    assert!(crashes.len() == 1 && crashes[0].starts_with("init: fault in e1000e-driver: "), "{crashes:?}");
    o.expect_serial_not_contains("FAIL").expect_serial_not_contains("KERNEL EXCEPTION");
}
