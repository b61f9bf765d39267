//! The floor links as the five functions do (functions/build.rs), so it stays the floor of what they run.
fn main() {
    println!("cargo:rustc-link-arg-bin=lambda-floor=-no-pie");
}
