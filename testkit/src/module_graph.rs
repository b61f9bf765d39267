//! The import graph of a crate's source files, read by `syn` from its `use` items and the `crate::`/`super::`
//! paths in its code (macro arguments included), for the test that keeps the layers of `meters` importing in
//! one direction.
//!
//! Each file is a node. An import names an item; it is an edge to the file that defines the item, found by
//! following `pub use` re-exports (so `use crate::domain::meter::AccountId` is an edge to `fields.rs`, where
//! `AccountId` is defined, not to `meter/mod.rs`, which only re-exports it). A name no file is seen to
//! define (one a macro generates) counts as the module's own file's. Re-exports are edges too, from the
//! re-exporting file to the defining one; `mod` declarations are not edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// A module path such as `["domain", "meter", "fields"]`; the crate root is `[]`.
type ModulePath = Vec<String>;

#[derive(Debug, Default)]
struct Module {
    file: PathBuf,
    /// Names of the items this file defines (types, functions, constants, traits, macros).
    defines: BTreeSet<String>,
    /// `pub use` re-exports: a name and the path it stands for; `*` stands for every name of a module.
    reexports: Vec<(String, Import)>,
    /// Every path this file names, made absolute (last segment an item or `self`).
    imports: Vec<Import>,
}

/// A path a file names.
#[derive(Debug, Clone)]
struct Import {
    path: ModulePath,
    /// For a path that began with a plain name: how long the importing module's path is. The name is a
    /// child module of this crate only if the module it makes exists; otherwise it is another crate's.
    relative_to: Option<usize>,
}

/// The crate's files and the edges between them.
#[derive(Debug)]
pub struct ModuleGraph {
    modules: BTreeMap<ModulePath, Module>,
}

/// An import from one file to another, by module path.
pub type Edge = (String, String);

impl ModuleGraph {
    /// Reads every `.rs` file under `src` (`lib.rs` the root, `x/mod.rs` and `x.rs` the module `x`).
    pub fn read(src: &Path) -> std::io::Result<Self> {
        let mut modules = BTreeMap::new();
        read_dir(src, src, &mut modules)?;
        Ok(Self { modules })
    }

    /// Every edge between two different files, each once, as `a::b -> c::d` names.
    pub fn edges(&self) -> BTreeSet<Edge> {
        let mut edges = BTreeSet::new();
        for (from, module) in &self.modules {
            let targets = module
                .imports
                .iter()
                .chain(module.reexports.iter().map(|(_, import)| import));
            for import in targets.filter(|import| self.is_own(import)) {
                if let Some(to) = self.defining_module(&import.path, 0)
                    && to != *from
                {
                    edges.insert((name(from), name(&to)));
                }
            }
        }
        edges
    }

    /// Whether the import names something of this crate.
    fn is_own(&self, import: &Import) -> bool {
        match import.relative_to {
            None => true,
            Some(base) => {
                import.path.len() > base && self.modules.contains_key(&import.path[..=base])
            }
        }
    }

    /// The file (module) that defines what `path` names.
    fn defining_module(&self, path: &ModulePath, depth: usize) -> Option<ModulePath> {
        if depth > 16 {
            return None;
        }
        // The longest prefix of the path that is a module.
        let mut split = path.len();
        while split > 0 && !self.modules.contains_key(&path[..split]) {
            split -= 1;
        }
        let module_path: ModulePath = path[..split].to_vec();
        let module = self.modules.get(&module_path)?;
        let Some(item) = path.get(split) else {
            return Some(module_path);
        };
        if item == "self" || module.defines.contains(item) {
            return Some(module_path);
        }
        for (name, target) in &module.reexports {
            if name == item {
                // Re-exported from another crate: no file of this one defines it.
                if !self.is_own(target) {
                    return None;
                }
                return self.defining_module(&target.path, depth + 1);
            }
            if name == "*" && self.is_own(target) {
                let mut through = target.path[..target.path.len() - 1].to_vec();
                through.push(item.clone());
                if let Some(found) = self.defining_module(&through, depth + 1)
                    && self.modules[&found].defines.contains(item)
                {
                    return Some(found);
                }
            }
        }
        Some(module_path)
    }

    /// The loops among files: each strongly connected set of two or more files, by name.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let edges = self.edges();
        let nodes: BTreeSet<String> = self.modules.keys().map(name).collect();
        let reaches = |from: &String| -> BTreeSet<String> {
            let mut seen = BTreeSet::new();
            let mut stack = vec![from.clone()];
            while let Some(node) = stack.pop() {
                for (a, b) in &edges {
                    if *a == node && seen.insert(b.clone()) {
                        stack.push(b.clone());
                    }
                }
            }
            seen
        };
        let reach: BTreeMap<String, BTreeSet<String>> = nodes
            .iter()
            .map(|node| (node.clone(), reaches(node)))
            .collect();
        let mut cycles: Vec<Vec<String>> = Vec::new();
        let mut placed = BTreeSet::new();
        for node in &nodes {
            if placed.contains(node) || !reach[node].contains(node) {
                continue;
            }
            let members: Vec<String> = nodes
                .iter()
                .filter(|other| reach[node].contains(*other) && reach[*other].contains(node))
                .cloned()
                .collect();
            placed.extend(members.iter().cloned());
            cycles.push(members);
        }
        cycles
    }

    /// Edges from a file to a file of a higher layer; `layer` gives each module path's layer by name.
    pub fn upward_imports(&self, layer: impl Fn(&str) -> usize) -> Vec<Edge> {
        self.edges()
            .into_iter()
            .filter(|(from, to)| layer(to) > layer(from))
            .collect()
    }

    pub fn files(&self) -> impl Iterator<Item = (String, &Path)> {
        self.modules
            .iter()
            .map(|(path, module)| (name(path), module.file.as_path()))
    }
}

fn name(path: &ModulePath) -> String {
    if path.is_empty() {
        "crate".into()
    } else {
        path.join("::")
    }
}

fn read_dir(
    src: &Path,
    dir: &Path,
    modules: &mut BTreeMap<ModulePath, Module>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            read_dir(src, &path, modules)?;
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).expect("under src");
        let mut module_path: ModulePath = relative
            .with_extension("")
            .components()
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(module_path.last().map(String::as_str), Some("mod" | "lib")) {
            module_path.pop();
        }
        let text = std::fs::read_to_string(&path)?;
        let module = parse(&module_path, &path, &text).map_err(|error| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {error}", path.display()),
            )
        })?;
        modules.insert(module_path, module);
    }
    Ok(())
}

/// A file's definitions, re-exports and imports, parsed by `syn`. Items under `#[cfg(test)]` are left out:
/// tests may reach anywhere, and a `super` inside a test module names the file's own module.
fn parse(module_path: &ModulePath, file: &Path, text: &str) -> syn::Result<Module> {
    let syntax = syn::parse_file(text)?;
    let mut reader = Reader {
        module_path,
        module: Module {
            file: file.to_owned(),
            ..Module::default()
        },
        depth: 0,
    };
    reader.visit_file(&syntax);
    Ok(reader.module)
}

/// Walks a file's syntax tree, gathering what `Module` holds.
struct Reader<'a> {
    module_path: &'a ModulePath,
    module: Module,
    /// How deep in items the walk is: a `pub use` at the top is a re-export; one in a function is not.
    depth: usize,
}

impl<'ast> Visit<'ast> for Reader<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if is_test_only(item) {
            return;
        }
        let defined = match item {
            syn::Item::Struct(item) => Some(&item.ident),
            syn::Item::Enum(item) => Some(&item.ident),
            syn::Item::Fn(item) => Some(&item.sig.ident),
            syn::Item::Trait(item) => Some(&item.ident),
            syn::Item::Const(item) => Some(&item.ident),
            syn::Item::Type(item) => Some(&item.ident),
            syn::Item::Static(item) => Some(&item.ident),
            syn::Item::Union(item) => Some(&item.ident),
            syn::Item::Macro(item) => item.ident.as_ref(),
            _ => None,
        };
        if let Some(name) = defined.filter(|_| self.depth == 0) {
            self.module.defines.insert(name.to_string());
        }
        if let syn::Item::Use(item) = item {
            let public = self.depth == 0 && !matches!(item.vis, syn::Visibility::Inherited);
            let mut named = Vec::new();
            use_paths(&[], &item.tree, &mut named);
            for (path, bound) in named {
                let Some(absolute) = absolute(self.module_path, &path) else {
                    continue;
                };
                if public {
                    self.module.reexports.push((bound, absolute.clone()));
                }
                self.module.imports.push(absolute);
            }
            return;
        }
        // An inline module's items are this file's: its depth stays the file's.
        let nested = !matches!(item, syn::Item::Mod(_));
        self.depth += usize::from(nested);
        visit::visit_item(self, item);
        self.depth -= usize::from(nested);
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        if !attributes_say_test(impl_item_attributes(item)) {
            visit::visit_impl_item(self, item);
        }
    }

    /// A path written in code, not in a `use`: `crate::telemetry::init()`, `impl super::table::Table`.
    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if matches!(
            segments.first().map(String::as_str),
            Some("crate" | "super")
        ) && let Some(absolute) = absolute(self.module_path, &segments)
        {
            self.module.imports.push(absolute);
        }
        visit::visit_path(self, path);
    }

    /// `pub(super)`, `pub(crate)`: who may see an item, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    /// A macro's arguments are tokens, not syntax: the paths in them are read from the tokens.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        for path in token_paths(mac.tokens.clone()) {
            if let Some(absolute) = absolute(self.module_path, &path) {
                self.module.imports.push(absolute);
            }
        }
        visit::visit_macro(self, mac);
    }
}

fn is_test_only(item: &syn::Item) -> bool {
    let attributes: &[syn::Attribute] = match item {
        syn::Item::Mod(item) => &item.attrs,
        syn::Item::Fn(item) => &item.attrs,
        syn::Item::Impl(item) => &item.attrs,
        syn::Item::Use(item) => &item.attrs,
        syn::Item::Struct(item) => &item.attrs,
        syn::Item::Enum(item) => &item.attrs,
        syn::Item::Const(item) => &item.attrs,
        syn::Item::Static(item) => &item.attrs,
        syn::Item::Trait(item) => &item.attrs,
        syn::Item::Type(item) => &item.attrs,
        syn::Item::Macro(item) => &item.attrs,
        _ => &[],
    };
    attributes_say_test(attributes)
}

fn impl_item_attributes(item: &syn::ImplItem) -> &[syn::Attribute] {
    match item {
        syn::ImplItem::Fn(item) => &item.attrs,
        syn::ImplItem::Const(item) => &item.attrs,
        syn::ImplItem::Type(item) => &item.attrs,
        syn::ImplItem::Macro(item) => &item.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]`, or a `cfg` that needs `test` (`#[cfg(all(test, …))]`).
fn attributes_say_test(attributes: &[syn::Attribute]) -> bool {
    attributes.iter().any(|attribute| {
        attribute.path().is_ident("cfg")
            && attribute.meta.require_list().is_ok_and(|list| {
                token_words(list.tokens.clone()).first().map(String::as_str) == Some("test")
                    || token_words(list.tokens.clone())
                        .windows(2)
                        .any(|pair| pair[0] == "all" && pair[1] == "test")
            })
    })
}

/// The identifiers of a token stream, in order, groups flattened.
fn token_words(tokens: TokenStream) -> Vec<String> {
    let mut words = Vec::new();
    for tree in tokens {
        match tree {
            TokenTree::Ident(ident) => words.push(ident.to_string()),
            TokenTree::Group(group) => words.extend(token_words(group.stream())),
            _ => {}
        }
    }
    words
}

/// The `crate::…` and `super::…` paths in a token stream (a macro's arguments), groups included.
fn token_paths(tokens: TokenStream) -> Vec<Vec<String>> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut paths = Vec::new();
    let mut at = 0;
    while at < trees.len() {
        if let TokenTree::Group(group) = &trees[at] {
            paths.extend(token_paths(group.stream()));
        }
        let starts =
            matches!(&trees[at], TokenTree::Ident(ident) if ident == "crate" || ident == "super");
        // Not the tail of a longer path (`a::super` cannot be written; `$crate` can, and is another crate's).
        let after_colon = at > 0
            && matches!(&trees[at - 1], TokenTree::Punct(p) if p.as_char() == ':' || p.as_char() == '$');
        if !starts || after_colon {
            at += 1;
            continue;
        }
        let mut path = vec![trees[at].to_string()];
        let mut next = at + 1;
        while let (
            Some(TokenTree::Punct(a)),
            Some(TokenTree::Punct(b)),
            Some(TokenTree::Ident(ident)),
        ) = (trees.get(next), trees.get(next + 1), trees.get(next + 2))
        {
            if a.as_char() != ':' || b.as_char() != ':' {
                break;
            }
            path.push(ident.to_string());
            next += 3;
        }
        if path.len() > 1 {
            paths.push(path);
        }
        at = next;
    }
    paths
}

/// `crate::…`, `super::…` and `self::…` paths made absolute, and a path that starts with a name resolved
/// from this module (a child module's, in Rust 2018): whether that name is a module of this crate, rather
/// than another crate, is only known once every file is read (`Import::relative_to`).
fn absolute(module_path: &ModulePath, path: &[String]) -> Option<Import> {
    let mut base = module_path.clone();
    let mut parts = path.iter().peekable();
    let relative_to = match parts.peek().map(|part| part.as_str()) {
        Some("crate") => {
            base.clear();
            parts.next();
            None
        }
        Some("super") => {
            while parts.peek().is_some_and(|part| *part == "super") {
                base.pop()?;
                parts.next();
            }
            None
        }
        Some("self") => {
            parts.next();
            None
        }
        Some(_) => Some(base.len()),
        None => return None,
    };
    base.extend(parts.cloned());
    Some(Import {
        path: base,
        relative_to,
    })
}

/// The paths a use tree names, each with the name it binds (`a::{b, c::d as e}` → `a::b` as `b`, `a::c::d` as
/// `e`; `a::{self}` → `a::self` as `a`; `a::*` → `a::*` as `*`).
fn use_paths(prefix: &[String], tree: &syn::UseTree, out: &mut Vec<(Vec<String>, String)>) {
    let with = |last: String| {
        let mut path = prefix.to_vec();
        path.push(last);
        path
    };
    match tree {
        syn::UseTree::Path(path) => use_paths(&with(path.ident.to_string()), &path.tree, out),
        syn::UseTree::Name(name) => {
            let name = name.ident.to_string();
            let bound = if name == "self" {
                prefix.last().cloned().unwrap_or_default()
            } else {
                name.clone()
            };
            out.push((with(name), bound));
        }
        syn::UseTree::Rename(rename) => {
            out.push((with(rename.ident.to_string()), rename.rename.to_string()));
        }
        syn::UseTree::Glob(_) => out.push((with("*".into()), "*".into())),
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                use_paths(prefix, tree, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The graph of a crate made of `files` (path under `src`, text).
    fn graph_of(files: &[(&str, &str)]) -> ModuleGraph {
        let src = std::env::temp_dir().join(format!("module-graph-{}", uuid::Uuid::new_v4()));
        for (path, text) in files {
            let file = src.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        let graph = ModuleGraph::read(&src).unwrap();
        std::fs::remove_dir_all(src).unwrap();
        graph
    }

    fn edge(from: &str, to: &str) -> Edge {
        (from.to_owned(), to.to_owned())
    }

    #[test]
    fn an_import_is_an_edge_to_the_file_that_defines_the_item_through_re_exports() {
        let graph = graph_of(&[
            ("lib.rs", "pub mod a; pub mod b;"),
            (
                "a/mod.rs",
                "mod inner; pub use inner::{Thing, other as renamed};",
            ),
            ("a/inner.rs", "pub struct Thing; pub fn other() {}"),
            (
                "b.rs",
                "use crate::a::{Thing, renamed as again};\nfn f() -> Thing { again(); Thing }",
            ),
        ]);
        let edges = graph.edges();
        assert!(edges.contains(&edge("b", "a::inner")), "{edges:?}");
        assert!(edges.contains(&edge("a", "a::inner")), "{edges:?}");
        assert!(!edges.contains(&edge("b", "a")), "{edges:?}");
    }

    #[test]
    fn paths_in_code_impl_headers_and_macro_arguments_are_edges_but_tests_and_strings_are_not() {
        let graph = graph_of(&[
            (
                "lib.rs",
                "pub mod a; pub mod b; pub mod c; pub mod d; pub mod e;",
            ),
            ("a.rs", "pub struct T; pub fn f() {}"),
            ("b.rs", "impl crate::a::T { pub(crate) fn g(&self) {} }"),
            ("c.rs", "fn g() { tracing::info!(x = ?crate::a::f()); }"),
            (
                "d.rs",
                "fn g() -> &'static str { \"crate::a::f\" }\n// crate::a::T\n#[cfg(test)]\nmod tests { use crate::a::T; }",
            ),
            ("e.rs", "fn g() { let t: super::a::T = super::a::T; }"),
        ]);
        let edges = graph.edges();
        assert!(edges.contains(&edge("b", "a")), "{edges:?}");
        assert!(
            !edges.contains(&edge("b", "crate")),
            "a visibility is no import: {edges:?}"
        );
        assert!(edges.contains(&edge("c", "a")), "{edges:?}");
        assert!(edges.contains(&edge("e", "a")), "{edges:?}");
        assert!(!edges.iter().any(|(from, _)| from == "d"), "{edges:?}");
    }

    #[test]
    fn another_crates_names_are_no_edge_even_when_re_exported() {
        let graph = graph_of(&[
            (
                "lib.rs",
                "pub mod a; pub mod b; pub use other_crate::domain;",
            ),
            (
                "a.rs",
                "use crate::domain::Meter; use serde::Serialize; use std::sync::Arc;",
            ),
            ("b.rs", "pub struct B;"),
        ]);
        assert_eq!(graph.edges(), BTreeSet::new());
    }

    #[test]
    fn files_that_import_each_other_around_a_loop_are_one_cycle_and_layers_are_checked() {
        let graph = graph_of(&[
            ("lib.rs", "pub mod low; pub mod mid; pub mod high;"),
            ("low.rs", "use crate::mid::M; pub struct L;"),
            ("mid.rs", "use crate::high::H; pub struct M;"),
            ("high.rs", "use crate::low::L; pub struct H;"),
        ]);
        assert_eq!(
            graph.cycles(),
            vec![vec!["high".to_owned(), "low".to_owned(), "mid".to_owned()]]
        );
        let layer = |module: &str| {
            ["low", "mid", "high"]
                .iter()
                .position(|m| *m == module)
                .unwrap_or(0)
        };
        assert_eq!(
            graph.upward_imports(layer),
            vec![edge("low", "mid"), edge("mid", "high")]
        );
    }

    #[test]
    fn a_file_that_is_not_rust_is_refused_naming_it() {
        let src = std::env::temp_dir().join(format!("module-graph-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("lib.rs"), "fn (").unwrap();
        let refused = ModuleGraph::read(&src).unwrap_err().to_string();
        std::fs::remove_dir_all(src).unwrap();
        assert!(refused.contains("lib.rs"), "{refused}");
    }
}
