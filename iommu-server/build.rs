//! Build script of the iommu-server program: links with the user linker script.
//!
//! The same as `userland/build.rs` (which resolves `user.ld` relative to a program in
//! `userland/`), for a crate at the top level.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/../userland/user.ld");
    }
    println!("cargo:rerun-if-changed=../userland/user.ld");
}
