//! Boot images of composed systems: `build/boot.img` plus a packed description.
//!
//! [`image_for`] checks `systems/<name>.toml` with the `mksys` library against the
//! programs in `build/boot.img`, packs it as the image's `system` entry and writes the
//! result under `target/scenarios/` (the system scenarios and `make bench` boot it).

use std::path::PathBuf;

use abi::bootimage::BootImage;

use crate::{build_dir, make_image, repo_root, scenario_dir, sysdesc};

/// `build/boot.img` with `systems/<system>.toml` as its `system` entry; panics with the
/// description's errors (file:line) or a missing `make image`.
pub fn image_for(system: &str) -> PathBuf {
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
