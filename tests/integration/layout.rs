//! The layout keeps its promise: no import cycle inside any crate of the workspace, files
//! inside one folder included. A file imports another when it names a path into it
//! (`use crate::a::b`, `super::x::Y`, `crate::a::f(...)` in code); a name a folder's
//! `mod.rs` (or `lib.rs`) re-exports from one of its files counts as that file's, and a
//! re-export itself is no import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates' source folders, from the workspace root.
const CRATES: [&str; 7] = [
    "host/src",
    "plugin-api/src",
    "serve/src",
    "metrics/src",
    "nats/src",
    "cli/src",
    "python/src",
];

/// A crate's files by module path (`[]` for the root, `["dispatch"]` for
/// `dispatch/mod.rs`, `["dispatch", "emit"]` for `dispatch/emit.rs`).
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(name);
                walk(&path, &inner, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut module = prefix.to_vec();
                if !["mod", "lib", "main"].contains(&name.as_str()) {
                    module.push(name);
                }
                out.insert(module, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The code of a file without comments and string literals, roughly: enough that a path
/// in a doc comment or a message is not read as an import.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.split("//").next().unwrap_or("");
            // Drop string literals (a path in a message is not an import).
            let mut out = String::new();
            let mut in_string = false;
            let mut previous = ' ';
            for c in line.chars() {
                if c == '"' && previous != '\\' {
                    in_string = !in_string;
                } else if !in_string {
                    out.push(c);
                }
                previous = c;
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a file's code names from `crate::`, `super::` or `self::`, as segments
/// from the crate root; the braces of a `use` group are expanded one level.
fn paths_named(module: &[String], code: &str) -> Vec<Vec<String>> {
    let parent = |m: &[String]| m[..m.len().saturating_sub(1)].to_vec();
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let starts = code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
        .chain(code.match_indices("self::"));
    for (start, _) in starts {
        // A whole word only (not `my_crate::`, not `a::self::`).
        if start > 0 {
            let before = bytes[start - 1];
            if before.is_ascii_alphanumeric() || before == b'_' || before == b':' {
                continue;
            }
        }
        let rest = &code[start..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let head = &rest[..end];
        // `crate::a::{b, c::D}`: a group right after the last `::`.
        let group = if head.ends_with("::") && rest[end..].starts_with('{') {
            rest[end + 1..].split('}').next()
        } else {
            None
        };
        let mut segments = head.split("::").filter(|s| !s.is_empty()).peekable();
        let mut base = match segments.next() {
            Some("crate") => Vec::new(),
            Some("self") => module.to_vec(),
            Some("super") => {
                let mut base = parent(module);
                while segments.peek() == Some(&"super") {
                    segments.next();
                    base = parent(&base);
                }
                base
            }
            _ => continue,
        };
        base.extend(segments.map(str::to_owned));
        match group {
            Some(group) => {
                for item in group.split(',') {
                    let item = item.split_whitespace().next().unwrap_or("");
                    let mut path = base.clone();
                    path.extend(
                        item.split("::")
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                    );
                    found.push(path);
                }
            }
            None => found.push(base),
        }
    }
    found
}

/// The names a folder file re-exports from its own files: name -> the file's module path.
fn reexports(module: &[String], code: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement
            .strip_prefix("pub use ")
            .or_else(|| statement.strip_prefix("pub(crate) use "))
            .or_else(|| statement.strip_prefix("pub(super) use "))
        else {
            continue;
        };
        let rest = rest.trim_start_matches("self::");
        let Some((child, items)) = rest.split_once("::") else {
            continue;
        };
        if child == "crate" || child == "super" || child.contains(' ') {
            continue;
        }
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            let name = item.rsplit(" as ").next().unwrap_or(item);
            let name = name.rsplit("::").next().unwrap_or(name).trim();
            if !name.is_empty() {
                let mut target = module.to_vec();
                target.push(child.to_owned());
                out.insert(name.to_owned(), target);
            }
        }
    }
    out
}

/// The file a path names: its longest prefix that is a module, followed through the
/// re-exports of folder files.
fn target_of(
    path: &[String],
    files: &BTreeMap<Vec<String>, PathBuf>,
    reexported: &BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>,
) -> Option<Vec<String>> {
    let mut length = path.len();
    while length > 0 && !files.contains_key(&path[..length]) {
        length -= 1;
    }
    let mut module = path[..length].to_vec();
    // A name a folder re-exports is its file's (a few hops at most).
    for _ in 0..4 {
        let Some(next) = path.get(module.len()).or_else(|| path.get(length)) else {
            break;
        };
        match reexported.get(&module).and_then(|names| names.get(next)) {
            Some(file) if files.contains_key(file) && *file != module => module = file.clone(),
            _ => break,
        }
    }
    Some(module)
}

/// The cycles among a crate's files: each as the files in it.
fn cycles(src: &Path) -> Vec<Vec<String>> {
    let files = modules(src);
    let mut code = BTreeMap::new();
    let mut reexported = BTreeMap::new();
    for (module, path) in &files {
        let text = code_of(&std::fs::read_to_string(path).unwrap());
        reexported.insert(module.clone(), reexports(module, &text));
        code.insert(module.clone(), text);
    }
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for module in files.keys() {
        // A re-export is no import: drop those statements.
        let text: String = code[module]
            .split(';')
            .filter(|s| {
                let s = s.trim_start();
                !(s.starts_with("pub use ")
                    || s.starts_with("pub(crate) use ")
                    || s.starts_with("pub(super) use "))
            })
            .collect::<Vec<_>>()
            .join(";");
        for named in paths_named(module, &text) {
            if let Some(target) = target_of(&named, &files, &reexported) {
                if target != *module && !target.is_empty() && !module.starts_with(&target) {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    // Strongly connected components (Tarjan), the ones of more than one file.
    struct State<'g> {
        edges: &'g BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<Vec<String>, usize>,
        low: BTreeMap<Vec<String>, usize>,
        stack: Vec<Vec<String>>,
        on_stack: BTreeSet<Vec<String>>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit(v: &Vec<String>, s: &mut State<'_>) {
        s.index.insert(v.clone(), s.next);
        s.low.insert(v.clone(), s.next);
        s.next += 1;
        s.stack.push(v.clone());
        s.on_stack.insert(v.clone());
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v.clone(), low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v.clone(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = w == *v;
                component.push(w.join("::"));
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for module in files.keys() {
        if !state.index.contains_key(module) {
            visit(module, &mut state);
        }
    }
    state.found
}

#[test]
fn no_crate_has_an_import_cycle_not_even_inside_a_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut all = Vec::new();
    for src in CRATES {
        for cycle in cycles(&root.join(src)) {
            all.push(format!("{src}: {}", cycle.join(" <-> ")));
        }
    }
    assert!(all.is_empty(), "import cycles:\n{}", all.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_cycle_when_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "mod b;\nmod c;\npub use b::Bee;\n").unwrap();
    std::fs::write(
        src.join("a/b.rs"),
        "use super::c::Sea;\npub struct Bee(Sea);\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/c.rs"),
        "// use crate::a::Bee; in a comment is no import\npub struct Sea;\nfn f() -> crate::a::Bee { todo!() }\n",
    )
    .unwrap();
    let found = cycles(src);
    assert_eq!(found.len(), 1, "{found:?}");
    let mut files = found[0].clone();
    files.sort();
    assert_eq!(files, ["a::b", "a::c"]);
    // Without c's use of Bee (through the folder's re-export), no cycle.
    std::fs::write(src.join("a/c.rs"), "pub struct Sea;\n").unwrap();
    assert!(cycles(src).is_empty());
}
