//! Link arguments for the release binary (issue 16: a small binary for edge
//! devices). lld (rustc's default linker on x86_64 Linux) packs the PIE's
//! ~40 000 relative relocations as DT_RELR (`-z pack-relative-relocs`,
//! loaded by glibc >= 2.36: ~0.7 MB less on disk, same ASLR) and folds
//! identical functions (`--icf=all`: generic code instantiated alike for
//! different types). Debug builds keep the defaults (fast links).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }
}
