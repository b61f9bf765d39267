//! The crate's layers import in one direction (`lib.rs` names them): no file imports from a layer above its
//! own, and no two files import each other, directly or around a loop. The bottom layer (the domain and the
//! store's ports) is the crate `meters-core`, where the compiler holds it; these tests hold the layers above.

use std::path::Path;

use meters_testkit::module_graph::ModuleGraph;

/// Each top-level module's layer; a module not listed here fails the test, so a new one is placed on purpose.
fn layer(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or(module);
    match top {
        "config" => 0,
        "telemetry" => 1,
        "store" => 3,
        "auth" => 4,
        "events" | "readings" => 5,
        "http" => 6,
        "runtime" => 7,
        "crate" => 8,
        other => {
            panic!("module `{other}` has no layer: add it to tests/suite/layers.rs and lib.rs")
        }
    }
}

fn graph() -> ModuleGraph {
    ModuleGraph::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).expect("the sources read")
}

/// The bottom layer's crate, `meters-core`: its layering is the compiler's, its loops and lengths are ours.
fn core_graph() -> ModuleGraph {
    ModuleGraph::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src"))
        .expect("the sources read")
}

#[test]
fn layers_import_in_one_direction() {
    let graph = graph();
    let upward = graph.upward_imports(layer);
    assert!(
        upward.is_empty(),
        "imports from a higher layer ({} in all): {upward:#?}",
        upward.len()
    );
}

#[test]
fn no_files_import_each_other_directly_or_around_a_loop() {
    let mut cycles = graph().cycles();
    cycles.extend(core_graph().cycles());
    assert!(
        cycles.is_empty(),
        "import loops ({} in all): {cycles:#?}",
        cycles.len()
    );
}

#[test]
fn the_graph_sees_imports_through_re_exports_nested_use_trees_and_code_paths() {
    let edges = graph().edges();
    let has = |from: &str, to: &str| edges.contains(&(from.to_owned(), to.to_owned()));
    // `use crate::store::dynamodb::{DynamoDbConfig, …}`: DynamoDbConfig is defined in client.rs.
    assert!(has("runtime", "store::dynamodb::client"), "{edges:#?}");
    // `use super::keys::{ABSENT, Item, ItemKey, PRESENT}`.
    assert!(has("store::dynamodb::writes", "store::dynamodb::keys"));
    // `pub use keys::{COUNTER_PARTITION, ItemKey}` is an edge of the re-exporting file.
    assert!(has("store::dynamodb", "store::dynamodb::keys"));
    // A path written in code, not in a `use`: `crate::telemetry::init()`.
    assert!(has("runtime", "telemetry"));
    // What `meters-core` defines is no file of this crate's: `crate::domain::…` is an edge to none.
    assert!(
        !edges
            .iter()
            .any(|(_, to)| to == "crate" || to.starts_with("domain"))
    );
}

#[test]
fn no_source_file_passes_450_lines_besides_its_tests() {
    let (graph, core) = (graph(), core_graph());
    let long: Vec<(String, usize)> = graph
        .files()
        .chain(core.files())
        .map(|(module, file)| {
            let text = std::fs::read_to_string(file).expect("readable");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            (module, code.lines().count())
        })
        .filter(|(_, lines)| *lines > 450)
        .collect();
    assert!(
        long.is_empty(),
        "files past 450 lines, tests aside: {long:?}"
    );
}
