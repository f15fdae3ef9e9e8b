//! `mksys`: checks a system description (TOML) and packs it for the boot image.
//!
//! `mksys systems/x.toml [-o build/x.sys] [--programs root,edudrv,...] [--dot out.dot
//! [--live serial.log]]`. Every mistake is printed as `file:line: entry: message` and the
//! exit status is 1 (nothing is written). `--programs` lists the built programs each
//! component's `program` must name. `--dot` writes the authority graph; `--live` adds the
//! `graph: <from> -> <to> <label>` lines a running system printed. See docs/system.md.

use std::process::ExitCode;

use abi::system::SystemDesc;
use scenarios::sysdesc::{compile, dot};

const USAGE: &str = "usage: mksys FILE.toml [-o OUT.sys] [--programs a,b,...] [--dot OUT.dot [--live SERIAL.log]]";

#[derive(Default)]
struct Args {
    input: Option<String>,
    out: Option<String>,
    programs: Option<Vec<String>>,
    dot: Option<String>,
    live: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "-o" => a.out = Some(value("-o")?),
            "--programs" => {
                let list = value("--programs")?;
                a.programs = Some(list.split([',', ' ']).filter(|s| !s.is_empty()).map(String::from).collect());
            }
            "--dot" => a.dot = Some(value("--dot")?),
            "--live" => a.live = Some(value("--live")?),
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option '{s}'")),
            _ if a.input.is_some() => return Err(format!("a second input file '{arg}'")),
            _ => a.input = Some(arg),
        }
    }
    if a.input.is_none() {
        return Err("no input file".into());
    }
    if a.live.is_some() && a.dot.is_none() {
        return Err("--live needs --dot".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("mksys: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let input = args.input.as_deref().unwrap_or_default();
    let text = match std::fs::read_to_string(input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mksys: cannot read {input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bytes = match compile(input, &text, args.programs.as_deref()) {
        Ok(b) => b,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("mksys: {} error(s) in {input}; nothing written", errors.len());
            return ExitCode::FAILURE;
        }
    };
    let desc = match SystemDesc::parse(&bytes) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mksys: internal error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(out) = &args.out {
        if let Err(e) = std::fs::write(out, &bytes) {
            eprintln!("mksys: cannot write {out}: {e}");
            return ExitCode::FAILURE;
        }
        println!(
            "mksys: {input}: system '{}': {} components, {} channels, {} regions, {} devices -> {out} ({} bytes)",
            desc.name(),
            desc.components().len(),
            desc.channels().len(),
            desc.regions().len(),
            desc.devices().len(),
            bytes.len()
        );
    }
    if let Some(path) = &args.dot {
        let live = match &args.live {
            None => Vec::new(),
            Some(log) => match std::fs::read(log) {
                Ok(b) => dot::live_edges(&String::from_utf8_lossy(&b)),
                Err(e) => {
                    eprintln!("mksys: cannot read {log}: {e}");
                    return ExitCode::FAILURE;
                }
            },
        };
        if let Err(e) = std::fs::write(path, dot::render(&desc, &live)) {
            eprintln!("mksys: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
        println!("mksys: wrote {path} ({} live edges)", live.len());
    }
    if args.out.is_none() && args.dot.is_none() {
        println!("mksys: {input}: ok (system '{}', {} bytes packed)", desc.name(), bytes.len());
    }
    ExitCode::SUCCESS
}
