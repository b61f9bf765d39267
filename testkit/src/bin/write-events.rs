//! Writes `events/`: every fixture of `meters_testkit::fixtures` and the environment files. Run it after changing a
//! case; the shared crate's tests fail while a file differs from what this writes.

fn main() -> std::io::Result<()> {
    let dir = meters_testkit::fixtures::events_dir();
    let fixtures = meters_testkit::fixtures::all();
    for fixture in &fixtures {
        let path = dir.join(fixture.file);
        std::fs::create_dir_all(path.parent().expect("a fixture lives in a folder"))?;
        std::fs::write(path, fixture.text())?;
    }
    let env_files = meters_testkit::fixtures::env_files();
    for (file, text) in &env_files {
        std::fs::write(dir.join(file), text)?;
    }
    println!(
        "wrote {} fixtures and {} environment files",
        fixtures.len(),
        env_files.len()
    );
    Ok(())
}
