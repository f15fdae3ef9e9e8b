//! Boot images of composed systems: `build/boot.img` plus a packed description.
//!
//! [`image_for`] checks `systems/<name>.toml` with the `mksys` library against the
//! programs in `build/boot.img`, packs it as the image's `system` entry and writes the
//! result under `target/scenarios/` (the system scenarios and `make bench` boot it);
//! [`elf_for`] puts that image inside the kernel ELF instead, for machines whose
//! firmware tables grow into where QEMU places an initrd (several devices).

use std::path::PathBuf;

use abi::bootimage::BootImage;

use crate::{build_dir, make_image, repo_root, scenario_dir, sysdesc};

/// `build/boot.img` with `systems/<system>.toml` as its `system` entry; panics with the
/// description's errors (file:line) or a missing `make image`.
pub fn image_for(system: &str) -> PathBuf {
    image_as(system, system)
}

/// [`image_for`] written as `target/scenarios/<name>.img`: tests that boot one system
/// in parallel scenarios each get their own file.
pub fn image_as(system: &str, name: &str) -> PathBuf {
    let file = format!("systems/{system}.toml");
    let text = std::fs::read_to_string(repo_root().join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let bytes = std::fs::read(build_dir().join("boot.img")).expect("build/boot.img: run `make image` first");
    let image = BootImage::parse(&bytes).expect("build/boot.img parses");
    let programs: Vec<String> = image.files().map(|f| f.name.to_string()).collect();
    let desc = sysdesc::compile(&file, &text, Some(&programs)).unwrap_or_else(|e| panic!("{}", e.join("\n")));
    let mut files: Vec<(&str, &[u8])> =
        image.files().filter(|f| f.name != "system").map(|f| (f.name, f.data)).collect();
    files.push(("system", &desc));
    let out = scenario_dir().join(format!("{name}.img"));
    make_image(&out, &files);
    out
}

/// `build/kernel.elf` with [`image_as`]`(system, name)` packed inside, written as
/// `target/scenarios/<name>.elf` (boot it as the scenario's kernel, without an
/// initrd); panics as [`image_for`] does.
pub fn elf_for(system: &str, name: &str) -> PathBuf {
    let image = image_as(system, name);
    let kernel = std::fs::read(build_dir().join("kernel.elf")).expect("build/kernel.elf: run `make image` first");
    let image = std::fs::read(&image).expect("the packed image");
    let packed = crate::packelf::pack_system(&kernel, &image).expect("pack the system into the kernel");
    let out = scenario_dir().join(format!("{name}.elf"));
    std::fs::write(&out, packed).expect("write the packed system");
    out
}
