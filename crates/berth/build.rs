//! Link the berth executable at a fixed address (not position-independent):
//! a PIE's relocated data (Rust's vtables and constant tables are large) is
//! written at every start, so every `berth runtime` invocation and every
//! shim would carry dirty pages it never needs. Fixed-address linking
//! resolves those relocations once, at link time. (A fully static build,
//! `+crt-static`, is already fixed-address, and must not get `-no-pie`.)
fn main() {
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if !features.split(',').any(|f| f == "crt-static") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
