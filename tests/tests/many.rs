//! Many devices: 256 edu functions on 32 root-port buses, each in its own IOSpace.
//!
//! A q35 machine with 256 edu functions (8 per bus) behind 32 PCIe root ports (8
//! functions of 4 bus-0 slots), 33 buses in all, boots; bootinfo lists every function
//! and the root task gives each alias group (here: each function) an IOSpace of its
//! own: more than 255 domain ids, 64 bootinfo entries, 16 context tables.

use abi::exit::ExitCode;
use scenarios::{Iommu, Scenario};

/// Root ports (one bus each, below bus 0) and edu functions per port.
const PORTS: u32 = 32;
const FUNCTIONS: u32 = 8;

#[test]
fn hundreds_of_functions_each_in_its_own_iospace() {
    let mut s = Scenario::new("manydev").append("init=dmatest").iommu(Iommu::Default);
    for port in 0..PORTS {
        let (slot, function) = (4 + port / 8, port % 8);
        let multi = if function == 0 { ",multifunction=on" } else { "" };
        s.extra_args.extend([
            "-device".into(),
            format!("pcie-root-port,id=rp{port},bus=pcie.0,chassis={},addr={slot:#x}.{function}{multi}", port + 1),
        ]);
        for f in 0..FUNCTIONS {
            let multi = if f == 0 { ",multifunction=on" } else { "" };
            s.extra_args.extend(["-device".into(), format!("edu,bus=rp{port},addr=0.{f}{multi}")]);
        }
    }
    s.timeout = std::time::Duration::from_secs(120);
    let o = s.run();
    o.expect_serial_not_contains("did not fit").expect_serial_not_contains("manydev: FAIL");
    let line = o.expect_line_starting("manydev: ");
    let (functions, buses) = scan(line, "manydev: ", " PCI functions on ", " buses");
    assert!(functions >= (PORTS * (FUNCTIONS + 1)) as usize, "too few functions listed: {line}");
    assert!(buses > PORTS as usize, "too few buses: {line}");
    let done = o
        .lines_starting("manydev: ")
        .into_iter()
        .find(|l| l.contains("alias groups assigned"))
        .unwrap_or_else(|| panic!("manydev never reported its assignments:\n{}", scenarios::tail(&o.serial, 30)));
    let (assigned, groups) = scan(done, "manydev: ", " of ", " alias groups");
    assert_eq!(assigned, groups, "{done}");
    assert!(assigned >= (PORTS * (FUNCTIONS + 1)) as usize, "{done}");
    // Discovery's tables are in boot memory: the 64 KiB boot stack keeps a wide margin.
    let peak = o.expect_line_starting("kernel: boot stack peak ");
    let (used, size) = scan(peak, "kernel: boot stack peak ", " of ", " KiB");
    assert!(used * 2 <= size, "the boot stack is more than half used: {peak}");
    o.expect_serial_contains("dmatest: all checks passed").expect_exit(ExitCode::Success);
}

/// The two numbers of `PREFIX a MIDDLE b SUFFIX...` in `line`.
fn scan(line: &str, prefix: &str, middle: &str, suffix: &str) -> (usize, usize) {
    let rest = line.strip_prefix(prefix).unwrap_or_else(|| panic!("{line:?} lacks {prefix:?}"));
    let (a, rest) = rest.split_once(middle).unwrap_or_else(|| panic!("{line:?} lacks {middle:?}"));
    let (b, _) = rest.split_once(suffix).unwrap_or_else(|| panic!("{line:?} lacks {suffix:?}"));
    (a.trim().parse().expect("a count"), b.trim().parse().expect("a count"))
}
