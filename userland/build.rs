//! Build script of every user program: links with the user linker script.
//!
//! Links a user program with the shared user linker script when building for bare metal.
//!
//! The one build script of every user program: each `userland/*/Cargo.toml` names it with
//! `build = "../build.rs"` (cargo runs it per package, so the paths below stay relative to
//! the program's own directory). A `.cargo/config.toml` rustflag cannot do this: target
//! rustflags reach the kernel too, which has its own linker script.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/../user.ld");
    }
    println!("cargo:rerun-if-changed=../user.ld");
}
