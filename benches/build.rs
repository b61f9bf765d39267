//! The floor links as the five functions do (functions/build.rs), so it stays the floor of what they run.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=lambda-floor=-no-pie");
    }
}
