//! The five functions link as position-dependent executables (`-no-pie`) on Linux, where Lambda runs them: a
//! PIE's ~20,000 pointers are relocated by the dynamic loader at every cold start, copying 74 pages; at a fixed
//! address there is nothing of the kind. What that buys and what it gives up: benches/TUNING.md, step 10.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
