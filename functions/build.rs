//! The five functions link as position-dependent executables (`-no-pie`): a PIE's ~20,000 pointers are
//! relocated by the dynamic loader at every cold start, touching 74 pages of it; at a fixed address there is
//! nothing to relocate. What that buys and what it gives up: benches/TUNING.md, step 10.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
