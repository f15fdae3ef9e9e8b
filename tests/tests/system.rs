//! The composed default system and issue 12's fault scenarios, booted in QEMU.
//!
//! Each scenario packs a description (`systems/default.toml` or a `systems/test-*.toml`,
//! checked by the same library as `mksys`) into a copy of `build/boot.img` and boots
//! it with QEMU's edu device at its default 28-bit DMA mask and
//! `iommu=allow-unremapped-dma` (QEMU 7.2 records no interrupt-remapping faults). They
//! assert the serial markers of init, the iommu-server, the edu driver (`edudrv`) and
//! management; a marker that never comes fails with the log's tail.

use std::path::PathBuf;

use abi::bootimage::BootImage;
use abi::exit::ExitCode;
use scenarios::{build_dir, make_image, repo_root, scenario_dir, sysdesc, Outcome, Scenario};

/// `build/boot.img` with `systems/<system>.toml` as its `system` entry.
fn image_for(system: &str) -> PathBuf {
    let file = format!("systems/{system}.toml");
    let text = std::fs::read_to_string(repo_root().join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let bytes = std::fs::read(build_dir().join("boot.img")).expect("build/boot.img: run `make image` first");
    let image = BootImage::parse(&bytes).expect("build/boot.img parses");
    let programs: Vec<String> = image.files().map(|f| f.name.to_string()).collect();
    let desc = sysdesc::compile(&file, &text, Some(&programs)).unwrap_or_else(|e| panic!("{}", e.join("\n")));
    let mut files: Vec<(&str, &[u8])> =
        image.files().filter(|f| f.name != "system").map(|f| (f.name, f.data)).collect();
    files.push(("system", &desc));
    let out = scenario_dir().join(format!("{system}.img"));
    make_image(&out, &files);
    out
}

/// Boots `system` with edu (default DMA mask) and `mib` MiB of RAM.
fn boot(name: &str, system: &str, mib: u32) -> Outcome {
    let mut s = Scenario::new(name).append("iommu=allow-unremapped-dma").memory(mib);
    s.extra_args = vec!["-device".into(), "edu".into()];
    s.timeout = std::time::Duration::from_secs(120);
    s.initrd(Some(image_for(system))).run()
}

/// The lines every composed system prints while starting.
fn started(o: &Outcome, system: &str) {
    o.expect_serial_contains(&format!("init: system '{system}': 3 components, 1 channels, 1 regions, 1 devices"))
        .expect_serial_contains(&format!("init: system '{system}' started: 3 components"))
        .expect_serial_contains("iommu-server: device 0: IOVAs below 0x10000000 (dma mask 28 bits)")
        .expect_serial_contains("management: watching device edu (driver edu-driver)")
        .expect_serial_not_contains("FAIL")
        .expect_serial_not_contains("ACCEPTED");
}

#[test]
fn default_system_does_dma_through_the_pool() {
    let o = boot("system_default", "default", 256);
    started(&o, "default");
    // Who can DMA where: init's summary and the server's domain.
    let driver = o.expect_line_starting("authority: edu-driver: ");
    assert!(driver.contains("dma via iommu-server edu") && driver.contains("device edu 00:03.0 via iommu-server"));
    assert!(!driver.contains("device edu,") && !driver.contains("irq control"), "{driver}");
    let server = o.expect_line_starting("authority: iommu-server: ");
    assert!(server.contains("device edu") && server.contains("dma pool edu") && server.contains("irq control"));
    o.expect_serial_contains("graph: iommu-server -> device:edu [pci 00:03.0, iospace]")
        .expect_serial_contains("graph: edu-driver -> iommu-server [dma edu, pool 64 KiB]")
        .expect_serial_contains("edudrv: generation 1, mode Normal")
        .expect_serial_contains("edudrv: DMA through the pool ok (iova 0x100000, gen 1)")
        .expect_serial_contains("init: edu-driver exited with code 0")
        .expect_serial_contains("init: system 'default': every component stopped (servers left running)")
        .expect_serial_not_contains("management: DMA fault")
        .expect_exit(ExitCode::Success);
}

/// `0x...` after `prefix` in `line`, parsed.
fn hex_after(line: &str, prefix: &str) -> u64 {
    let rest = &line[line.find(prefix).unwrap_or_else(|| panic!("{prefix} in {line}")) + prefix.len()..];
    let digits: String = rest.trim_start_matches("0x").chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    u64::from_str_radix(&digits, 16).unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn frames_above_4g_get_iovas_below_the_28_bit_mask() {
    let o = boot("system_6g", "default", 6144);
    started(&o, "default");
    let line = o.expect_line_starting("edudrv: buffer iova ");
    let (iova, frame) = (hex_after(line, "iova "), hex_after(line, "frame "));
    assert!(iova + 4096 <= 1 << 28, "IOVA {iova:#x} fits edu's 28-bit mask: {line}");
    assert!(frame >= 1 << 32, "the driver's budget (and pool) lies above 4 GiB with -m 6G: {line}");
    o.expect_serial_contains("edudrv: DMA through the pool ok (iova 0x100000, gen 1)").expect_exit(ExitCode::Success);
}
