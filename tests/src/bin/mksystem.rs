//! `mksystem`: packs the boot image into the kernel ELF.
//!
//! Packs the boot image into the kernel ELF: `mksystem KERNEL.elf BOOT.img -o SYSTEM.elf`.
//! The result boots with QEMU `-kernel SYSTEM.elf` or GRUB `multiboot2`, no module needed
//! (see docs/boot.md); it is parsed back and checked before it is written.

use std::process::ExitCode;

use scenarios::packelf::{pack_system, unpack_system};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kernel, image, dash_o, out] = args.as_slice() else {
        eprintln!("usage: mksystem KERNEL.elf BOOT.img -o SYSTEM.elf");
        return ExitCode::from(2);
    };
    if dash_o != "-o" {
        eprintln!("usage: mksystem KERNEL.elf BOOT.img -o SYSTEM.elf");
        return ExitCode::from(2);
    }
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("cannot read {p}: {e}"));
    let result = read(kernel).and_then(|k| read(image).map(|i| (k, i))).and_then(|(k, i)| {
        let system = pack_system(&k, &i)?;
        let (back, desc) = unpack_system(&system)?;
        if back != i {
            return Err("the packed segment does not read back as the image".into());
        }
        std::fs::write(out, &system).map_err(|e| format!("cannot write {out}: {e}"))?;
        Ok((system.len(), desc))
    });
    match result {
        Ok((len, desc)) => {
            println!(
                "mksystem: wrote {out} ({len} bytes): boot image of {} bytes at {:#x}, checksum {:#x}",
                desc.len, desc.paddr, desc.checksum
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mksystem: {e}");
            ExitCode::FAILURE
        }
    }
}
