//! Writes `events/`: every fixture of `meters_testkit::fixtures` and `env.json`. Run it after changing a
//! case; the shared crate's tests fail while a file differs from what this writes.

fn main() -> std::io::Result<()> {
    let dir = meters_testkit::fixtures::events_dir();
    let fixtures = meters_testkit::fixtures::all();
    for fixture in &fixtures {
        let path = dir.join(fixture.file);
        std::fs::create_dir_all(path.parent().expect("a fixture lives in a folder"))?;
        std::fs::write(path, fixture.text())?;
    }
    std::fs::write(dir.join("env.json"), meters_testkit::fixtures::env_json())?;
    println!("wrote {} fixtures and env.json", fixtures.len());
    Ok(())
}
