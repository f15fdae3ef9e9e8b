//! Host-side harness: boots scenarios in QEMU and asserts on their logs.
//!
//! Host-side harness: boots scenarios in QEMU (q35, TCG) with a timeout, keeps each
//! serial log in `<cargo target dir>/scenarios/<name>.log`, and asserts on serial markers and the
//! isa-debug-exit code. Every failed assertion prints the tail of the serial log.
//!
//! The harness never builds anything (cargo holds its build lock while tests run):
//! `make test` builds `build/system.elf` (the kernel with the boot image packed in),
//! `build/kernel.elf`, `build/boot.img` and `build/kernel.iso` first.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use abi::exit::{qemu_status_to_code, ExitCode};

pub mod console;
pub mod frames;
pub mod monitor;
pub mod net;
pub mod packelf;
pub mod sysdesc;
pub mod systems;

/// Lines of serial log shown when an assertion fails.
pub const TAIL_LINES: usize = 40;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the repo").to_path_buf()
}

/// Where `make image` puts the kernel, boot image and ISO.
pub fn build_dir() -> PathBuf {
    repo_root().join("build")
}

/// cargo's output directory: `CARGO_TARGET_DIR` when set (relative to the repository
/// root, where `make` runs cargo), else `target/`, as the Makefile decides.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join("target"),
    }
}

/// The bare-metal build of user program `name` (built by `make image`).
pub fn user_program(name: &str) -> PathBuf {
    target_dir().join("x86_64-unknown-none").join("release").join(name)
}

/// Where scenario logs and scratch images go.
pub fn scenario_dir() -> PathBuf {
    let dir = target_dir().join("scenarios");
    std::fs::create_dir_all(&dir).expect("create the scenario directory");
    dir
}

/// Which IOMMU QEMU emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Iommu {
    /// No IOMMU (and so no DMAR table).
    None,
    /// `-device intel-iommu,intremap=on` (aw-bits 39, 3-level tables, interrupt remapping).
    Default,
    /// `-device intel-iommu,intremap=off`: no interrupt remapping (ECAP.IR clear).
    NoInterruptRemapping,
    /// `-device intel-iommu,aw-bits=N` (QEMU's default turns interrupt remapping on).
    AwBits(u8),
}

/// One QEMU boot.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name (log file name).
    pub name: String,
    /// Kernel passed with `-kernel` (unless booting a CD).
    pub kernel: PathBuf,
    /// Boot module passed with `-initrd`.
    pub initrd: Option<PathBuf>,
    /// ISO to boot instead of `-kernel`.
    pub cdrom: Option<PathBuf>,
    /// Guest RAM.
    pub memory_mib: u32,
    /// IOMMU model.
    pub iommu: Iommu,
    /// Kernel command line.
    pub append: Option<String>,
    /// Further QEMU arguments.
    pub extra_args: Vec<String>,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// QEMU CPU model (`-cpu`); `max` unless a scenario names an older one.
    pub cpu: String,
    /// UEFI firmware image (`-bios`), or None for QEMU's SeaBIOS.
    pub firmware: Option<PathBuf>,
    /// Ends the run (QEMU killed, not a timeout) once the serial log holds every one of
    /// these fragments: for systems that never stop by themselves (servers keep waiting).
    pub stop_at: Vec<String>,
    /// Ends the run (QEMU killed, not a timeout) once this file exists: a host-side
    /// client that talks to the guest says it is done (the serial log is QEMU's to write).
    pub stop_file: Option<PathBuf>,
}

impl Scenario {
    /// The default system: build/system.elf (boot image packed in), 256 MiB, intel-iommu.
    pub fn new(name: &str) -> Self {
        Scenario {
            name: name.to_string(),
            kernel: build_dir().join("system.elf"),
            initrd: None,
            cdrom: None,
            memory_mib: 256,
            iommu: Iommu::Default,
            append: None,
            extra_args: Vec::new(),
            timeout: Duration::from_secs(60),
            cpu: "max".to_string(),
            firmware: None,
            stop_at: Vec::new(),
            stop_file: None,
        }
    }

    /// Sets the kernel command line.
    pub fn append(mut self, cmdline: &str) -> Self {
        self.append = Some(cmdline.to_string());
        self
    }

    /// Sets guest RAM.
    pub fn memory(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// Sets the IOMMU model.
    pub fn iommu(mut self, iommu: Iommu) -> Self {
        self.iommu = iommu;
        self
    }

    /// Boots the plain build/kernel.elf (no packed image) with this `-initrd` boot
    /// module, or with none.
    pub fn initrd(mut self, initrd: Option<PathBuf>) -> Self {
        self.kernel = build_dir().join("kernel.elf");
        self.initrd = initrd;
        self
    }

    /// Sets the QEMU CPU model (`qemu-system-x86_64 -cpu help` lists them).
    pub fn cpu(mut self, model: &str) -> Self {
        self.cpu = model.to_string();
        self
    }

    /// Boots with UEFI firmware `firmware` (OVMF) instead of SeaBIOS; the machine gets
    /// the split irqchip that intel-iommu needs there.
    pub fn uefi(mut self, firmware: PathBuf) -> Self {
        self.firmware = Some(firmware);
        self
    }

    /// Adds QEMU arguments (devices, drives, netdevs).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Boots an ISO instead of `-kernel`.
    pub fn cdrom(mut self, iso: PathBuf) -> Self {
        self.cdrom = Some(iso);
        self
    }

    /// Whether the serial log holds every fragment of `stop_at`.
    fn log_holds_all(&self, log: &Path) -> bool {
        let mut serial = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
        serial.push_str(&std::fs::read_to_string(host_notes(log)).unwrap_or_default());
        self.stop_at.iter().all(|m| serial.contains(m.as_str()))
    }

    fn qemu_args(&self, log: &Path) -> Vec<String> {
        let machine = if self.firmware.is_some() { "q35,kernel-irqchip=split" } else { "q35" };
        let mut args: Vec<String> = [
            "-machine",
            machine,
            "-accel",
            "tcg",
            "-smp",
            "1",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["-cpu".to_string(), self.cpu.clone()]);
        if let Some(firmware) = &self.firmware {
            args.extend(["-bios".to_string(), firmware.display().to_string()]);
        }
        args.push("-m".into());
        args.push(format!("{}M", self.memory_mib));
        args.push("-serial".into());
        args.push(format!("file:{}", log.display()));
        match self.iommu {
            Iommu::None => {}
            Iommu::Default => args.extend(["-device".to_string(), "intel-iommu,intremap=on".to_string()]),
            Iommu::NoInterruptRemapping => args.extend(["-device".to_string(), "intel-iommu,intremap=off".to_string()]),
            Iommu::AwBits(bits) => args.extend(["-device".to_string(), format!("intel-iommu,aw-bits={bits}")]),
        }
        if let Some(iso) = &self.cdrom {
            args.extend(["-cdrom".to_string(), iso.display().to_string()]);
        } else {
            args.extend(["-kernel".to_string(), self.kernel.display().to_string()]);
            if let Some(initrd) = &self.initrd {
                args.extend(["-initrd".to_string(), initrd.display().to_string()]);
            }
            if let Some(append) = &self.append {
                args.extend(["-append".to_string(), append.clone()]);
            }
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Boots the scenario and waits for QEMU to exit or the timeout.
    pub fn run(&self) -> Outcome {
        if let Some(firmware) = &self.firmware {
            assert!(firmware.exists(), "{} missing: run `make test` (it installs ovmf)", firmware.display());
        }
        for needed in [Some(&self.kernel), self.initrd.as_ref(), self.cdrom.as_ref()].into_iter().flatten() {
            if self.cdrom.is_some() && needed == &self.kernel {
                continue;
            }
            assert!(needed.exists(), "{} missing: run `make image` (or `make test`) first", needed.display());
        }
        let log = scenario_dir().join(format!("{}.log", self.name));
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(host_notes(&log));
        let args = self.qemu_args(&log);
        let mut child: Child = Command::new("qemu-system-x86_64")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start qemu-system-x86_64 ({e}): run `make test` to install it"));
        let start = Instant::now();
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for QEMU") {
                break status.code();
            }
            let client_done = self.stop_file.as_ref().is_some_and(|f| f.exists());
            if client_done || (!self.stop_at.is_empty() && self.log_holds_all(&log)) {
                std::thread::sleep(Duration::from_millis(200)); // let the line after it land
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                timed_out = true;
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut qemu_stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            use std::io::Read;
            let _ = err.read_to_string(&mut qemu_stderr);
        }
        let serial = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        Outcome {
            name: self.name.clone(),
            status,
            exit_code: status.and_then(qemu_status_to_code),
            timed_out,
            timeout: self.timeout,
            serial,
            qemu_stderr,
            log_path: log,
        }
    }
}

/// Where the host side of a scenario notes lines beside the serial log `log` (QEMU
/// writes the log at its own offset, so a line appended to it could be overwritten):
/// `stop_at` fragments are looked for in both; `net::note_in_log` writes here.
pub fn host_notes(log: &Path) -> PathBuf {
    log.with_extension("host")
}

/// What a boot did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Scenario name.
    pub name: String,
    /// QEMU's exit status (None if killed).
    pub status: Option<i32>,
    /// The guest's exit code, if it left through isa-debug-exit.
    pub exit_code: Option<u32>,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// The timeout that applied.
    pub timeout: Duration,
    /// The serial log.
    pub serial: String,
    /// What QEMU printed on stderr.
    pub qemu_stderr: String,
    /// Where the log is kept.
    pub log_path: PathBuf,
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Parses the kernel's `untyped: total <bytes> bytes RAM in <n> caps` line.
pub fn untyped_ram_total(serial: &str) -> Option<(u64, u64)> {
    let line = serial.lines().find(|l| l.starts_with("untyped: total "))?;
    let mut words = line.split_whitespace();
    let bytes = words.nth(2)?.parse().ok()?;
    let caps = words.nth(3)?.parse().ok()?;
    Some((bytes, caps))
}

impl Outcome {
    fn report(&self, what: &str) -> String {
        let mut s = format!("scenario '{}': {what}\n", self.name);
        if self.timed_out {
            let _ = writeln!(s, "TIMED OUT after {} s", self.timeout.as_secs());
        }
        let _ = writeln!(
            s,
            "QEMU status {:?}, guest exit code {:?}",
            self.status,
            self.exit_code.map(|c| format!("{c:#x}"))
        );
        if !self.qemu_stderr.trim().is_empty() {
            let _ = writeln!(s, "QEMU stderr: {}", self.qemu_stderr.trim());
        }
        let _ = writeln!(s, "last {TAIL_LINES} lines of {}:", self.log_path.display());
        s + &tail(&self.serial, TAIL_LINES)
    }

    /// Asserts the guest exited with `code`.
    pub fn expect_exit(&self, code: ExitCode) -> &Self {
        if self.timed_out || self.exit_code != Some(code.raw()) {
            panic!("{}", self.report(&format!("expected exit code {:#x} ({code:?})", code.raw())));
        }
        self
    }

    /// Asserts the serial log contains `marker`.
    pub fn expect_serial_contains(&self, marker: &str) -> &Self {
        if !self.serial.contains(marker) {
            panic!("{}", self.report(&format!("serial log lacks {marker:?}")));
        }
        self
    }

    /// Asserts the serial log does not contain `marker`.
    pub fn expect_serial_not_contains(&self, marker: &str) -> &Self {
        if self.serial.contains(marker) {
            panic!("{}", self.report(&format!("serial log unexpectedly contains {marker:?}")));
        }
        self
    }

    /// Serial lines starting with `prefix`.
    pub fn lines_starting(&self, prefix: &str) -> Vec<&str> {
        self.serial.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    /// Asserts a line starts with `prefix`, returning the first.
    pub fn expect_line_starting(&self, prefix: &str) -> &str {
        match self.lines_starting(prefix).first() {
            Some(line) => line,
            None => panic!("{}", self.report(&format!("no serial line starts with {prefix:?}"))),
        }
    }
}

/// Writes a boot image packed from `(name, data)` files.
pub fn make_image(out: &Path, files: &[(&str, &[u8])]) {
    let bytes = abi::bootimage::pack(files).expect("pack boot image");
    std::fs::write(out, bytes).expect("write boot image");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 3), "");
    }

    #[test]
    fn untyped_total_parses() {
        let log = "x\nuntyped: total 265220096 bytes RAM in 28 caps, 5 bytes device memory in 3 caps\n";
        assert_eq!(untyped_ram_total(log), Some((265220096, 28)));
        assert_eq!(untyped_ram_total("nothing"), None);
    }

    #[test]
    fn outcome_reports_failures_with_the_tail() {
        let o = Outcome {
            name: "t".into(),
            status: Some(3),
            exit_code: qemu_status_to_code(3),
            timed_out: false,
            timeout: Duration::from_secs(1),
            serial: "one\ntwo\n".into(),
            qemu_stderr: String::new(),
            log_path: PathBuf::from("/tmp/t.log"),
        };
        assert_eq!(o.exit_code, Some(1));
        o.expect_exit(ExitCode::UserFailure).expect_serial_contains("two");
        let err = std::panic::catch_unwind(|| {
            o.expect_exit(ExitCode::Success);
        })
        .unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("expected exit code 0x0") && msg.ends_with("one\ntwo"), "{msg}");
    }

    #[test]
    fn qemu_arguments() {
        let s = Scenario::new("x").iommu(Iommu::AwBits(48)).append("init=fault").memory(128);
        let args = s.qemu_args(Path::new("/tmp/x.log"));
        let joined = args.join(" ");
        assert!(joined.contains("-device intel-iommu,aw-bits=48"));
        let default = Scenario::new("z").qemu_args(Path::new("/tmp/z.log")).join(" ");
        assert!(default.contains("-device intel-iommu,intremap=on"), "{default}");
        assert!(joined.contains("-m 128M") && joined.contains("-append init=fault"));
        assert!(joined.contains("-serial file:/tmp/x.log"));
        assert!(default.contains("system.elf") && !default.contains("-initrd"), "{default}");
        let module =
            Scenario::new("m").initrd(Some(PathBuf::from("/b.img"))).qemu_args(Path::new("/tmp/m.log")).join(" ");
        assert!(module.contains("kernel.elf -initrd /b.img"), "{module}");
        let cd = Scenario::new("y").cdrom(PathBuf::from("/k.iso")).qemu_args(Path::new("/tmp/y.log")).join(" ");
        assert!(cd.contains("-cdrom /k.iso") && !cd.contains("-kernel"));
    }
}
