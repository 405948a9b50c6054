//! Link arguments for the release binary (issue 16: a small binary for edge
//! devices). lld (rustc's default linker on x86_64 Linux) packs the PIE's
//! ~40 000 relative relocations as DT_RELR (`-z pack-relative-relocs`,
//! loaded by glibc >= 2.36: ~0.7 MB less on disk, same ASLR) and folds
//! identical functions (`--icf=all`: generic code instantiated alike for
//! different types), and drops the unwind tables (`.eh_frame`, ~1.6 MB):
//! the release profile has `panic = "abort"`, so nothing ever unwinds; a
//! panic still prints its message and location, and a backtrace is only
//! its first frame (it had no symbol names anyway, the binary is stripped).
//! `-C force-unwind-tables=no` does not do it under fat LTO: std's
//! precompiled bitcode carries `uwtable` and passes it on to every function
//! it is inlined into (measured: the same `.eh_frame`, to the byte). Debug
//! builds keep the defaults (fast links, unwinding tests).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo:rerun-if-changed=discard-eh-frame.ld");
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/discard-eh-frame.ld");
    }
}
