//! Link the berth executable at a fixed address (not position-independent):
//! a PIE's relocated data (Rust's vtables and constant tables are large) is
//! written at every start, so every `berth runtime` invocation and every
//! shim would carry dirty pages it never needs. Fixed-address linking
//! resolves those relocations once, at link time. (A fully static build,
//! `+crt-static`, is already fixed-address, and must not get `-no-pie`.)
//!
//! The static release build also puts the runtime path's functions first
//! and together (`scripts/runtime-order.txt`, from sampling `berth runtime`
//! runs): the binary holds the registry and the engine too, and without the
//! ordering a runtime exec faulted in text scattered over megabytes.
fn main() {
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if features.split(',').any(|f| f == "crt-static") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let order = std::path::Path::new(&dir).join("../../scripts/runtime-order.txt");
        if order.exists() {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                order.display()
            );
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
            println!("cargo:rerun-if-changed={}", order.display());
        }
    } else {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
