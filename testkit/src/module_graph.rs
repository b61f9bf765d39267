//! The import graph of a crate's source files, read from its `use` lines and `crate::`/`super::` paths, for
//! the test that keeps the layers of `meters` importing in one direction.
//!
//! Each file is a node. An import names an item; it is an edge to the file that defines the item, found by
//! following `pub use` re-exports (so `use crate::domain::meter::AccountId` is an edge to `fields.rs`, where
//! `AccountId` is defined, not to `meter/mod.rs`, which only re-exports it). A name no file is seen to
//! define (one a macro generates) counts as the module's own file's. Re-exports are edges too, from the
//! re-exporting file to the defining one; `mod` declarations are not edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
        for (name, target) in module
            .reexports
            .iter()
            .filter(|(_, target)| self.is_own(target))
        {
            if name == item {
                return self.defining_module(&target.path, depth + 1);
            }
            if name == "*" {
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
        let module = parse(&module_path, &path, &text);
        modules.insert(module_path, module);
    }
    Ok(())
}

/// A file's definitions, re-exports and imports, from its text (comments and strings blanked first). Its
/// test module is left out: tests may reach anywhere, and a `super` inside it names the file's own module.
fn parse(module_path: &ModulePath, file: &Path, text: &str) -> Module {
    let code = without_comments_and_strings(text);
    let code = code
        .split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut module = Module {
        file: file.to_owned(),
        ..Module::default()
    };
    for line in code.lines() {
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!'))
            .filter(|word| !word.is_empty())
            .collect();
        for pair in words.windows(2) {
            let defined = match pair[0] {
                "struct" | "enum" | "fn" | "trait" | "const" | "type" | "static" | "union" => {
                    Some(pair[1])
                }
                "macro_rules!" => Some(pair[1]),
                _ => None,
            };
            if let Some(defined) = defined {
                module.defines.insert(defined.to_owned());
            }
        }
    }
    // `use` statements, which may span lines and nest braces.
    let mut rest = code.as_str();
    while let Some(at) = find_word(rest, "use") {
        let before = rest[..at].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let statement_end = rest[at..].find(';').map_or(rest.len(), |end| at + end);
        let tree = rest[at + 3..statement_end].trim();
        for (path, alias) in expand(tree) {
            let Some(absolute) = absolute(module_path, &path) else {
                continue;
            };
            if public {
                module.reexports.push((alias, absolute.clone()));
            }
            module.imports.push(absolute);
        }
        rest = &rest[statement_end..];
    }
    // Paths written in code: `crate::a::b`, `super::a`.
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(start) {
            let at = from + found;
            from = at + start.len();
            let preceded_by_word = code[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if preceded_by_word {
                continue;
            }
            let path_text: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let path: Vec<String> = path_text
                .split("::")
                .filter(|part| !part.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(absolute) = absolute(module_path, &path) {
                module.imports.push(absolute);
            }
        }
    }
    module
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
/// `e`; `a::{self}` → `a::self` as `a`).
fn expand(tree: &str) -> Vec<(Vec<String>, String)> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    expand_into(&[], &tree, &mut out);
    out
}

fn expand_into(prefix: &[String], tree: &str, out: &mut Vec<(Vec<String>, String)>) {
    for part in split_top(tree) {
        if let Some(open) = part.find('{') {
            let head = part[..open].trim_end_matches("::");
            let inner = &part[open + 1..part.len() - 1];
            let mut next = prefix.to_vec();
            next.extend(
                head.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
            expand_into(&next, inner, out);
            continue;
        }
        let (path_text, alias) = match part.split_once("as") {
            Some((path, alias)) if part.contains("::") || !alias.is_empty() => {
                (path.to_owned(), Some(alias.to_owned()))
            }
            _ => (part.clone(), None),
        };
        let mut path = prefix.to_vec();
        path.extend(
            path_text
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        let bound = match (alias, path.last().map(String::as_str)) {
            (Some(alias), _) => alias,
            (None, Some("self")) => path
                .len()
                .checked_sub(2)
                .map_or_else(String::new, |at| path[at].clone()),
            (None, Some(last)) => last.to_owned(),
            (None, None) => continue,
        };
        out.push((path, bound));
    }
}

/// `a,b::{c,d},e` → `a`, `b::{c,d}`, `e`.
fn split_top(tree: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in tree.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts.into_iter().filter(|part| !part.is_empty()).collect()
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if boundary(before) && after.is_some_and(char::is_whitespace) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// The text with comments removed and string and character literals emptied, lines kept.
fn without_comments_and_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
            continue;
        }
        if c == 'r' && (next == Some('#') || next == Some('"')) && !prev_is_word(&chars, i) {
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                j += 1;
                loop {
                    match chars.get(j) {
                        None => break,
                        Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                            j += 1 + hashes;
                            break;
                        }
                        Some('\n') => out.push('\n'),
                        _ => {}
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
                continue;
            }
        }
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                } else if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
            continue;
        }
        if c == '\'' {
            // A char literal ('a', '\n', '{'); a lifetime ('a) has no closing quote two or three along.
            let close = if next == Some('\\') { i + 3 } else { i + 2 };
            if chars.get(close) == Some(&'\'')
                || (next == Some('\\') && chars.get(i + 4) == Some(&'\''))
            {
                let end = if chars.get(close) == Some(&'\'') {
                    close
                } else {
                    i + 4
                };
                out.push_str("' '");
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn prev_is_word(chars: &[char], at: usize) -> bool {
    at > 0 && (chars[at - 1].is_alphanumeric() || chars[at - 1] == '_')
}
