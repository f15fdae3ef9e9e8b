//! `mkbootimg`: packs a boot image.
//!
//! Packs a boot image: `mkbootimg -o OUT NAME=PATH...`. The manifest is an entry like
//! any other (`manifest=userland/manifest.txt`). The result is parsed back and its
//! manifest checked before it is written, so a bad image never reaches QEMU. An entry
//! named `system` (from `mksys`) must parse as a packed system description too; programs
//! it names that the image lacks are listed.

use std::process::ExitCode;

use abi::bootimage::{pack, BootImage};
use abi::system::{SystemDesc, SYSTEM_ENTRY};

fn usage() -> ExitCode {
    eprintln!("usage: mkbootimg -o OUT NAME=PATH [NAME=PATH...]   (one entry must be manifest=...)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = None;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "-o" {
            match it.next() {
                Some(path) => out = Some(path.clone()),
                None => return usage(),
            }
            continue;
        }
        let Some((name, path)) = arg.split_once('=') else {
            eprintln!("mkbootimg: '{arg}' is not NAME=PATH");
            return usage();
        };
        match std::fs::read(path) {
            Ok(data) => entries.push((name.to_string(), data)),
            Err(e) => {
                eprintln!("mkbootimg: cannot read {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let Some(out) = out else { return usage() };
    if entries.is_empty() {
        return usage();
    }
    let files: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let image = match pack(&files) {
        Ok(image) => image,
        Err(e) => {
            eprintln!("mkbootimg: {e}");
            return ExitCode::FAILURE;
        }
    };
    let parsed = match BootImage::parse(&image).and_then(|i| i.manifest().map(|m| (i, m.root()))) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mkbootimg: the image would be rejected: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(system) = parsed.0.files().find(|f| f.name == SYSTEM_ENTRY) {
        let desc = match SystemDesc::parse(system.data) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("mkbootimg: the '{SYSTEM_ENTRY}' entry would be rejected: {e}");
                return ExitCode::FAILURE;
            }
        };
        for c in desc.components().iter() {
            let program = desc.str(c.program);
            if !parsed.0.files().any(|f| f.name == program) {
                println!("mkbootimg: note: component '{}' runs '{program}', not in this image", desc.str(c.name));
            }
        }
    }
    if let Err(e) = std::fs::write(&out, &image) {
        eprintln!("mkbootimg: cannot write {out}: {e}");
        return ExitCode::FAILURE;
    }
    for file in parsed.0.files() {
        println!("mkbootimg: {:<12} {:>9} bytes at {:#x}", file.name, file.data.len(), file.offset);
    }
    println!("mkbootimg: wrote {out} ({} bytes, root task '{}')", image.len(), parsed.1);
    ExitCode::SUCCESS
}
