//! The crate's files import one way: no file reaches, through `crate::…` and `super::…`
//! paths, a file that reaches it back. (A cycle is how a feature ends up scattered: the
//! review before the feature folders found two.) Test modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `a/b.rs` and `a/b/mod.rs` → ["a", "b"]; `lib.rs` → [].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The longest prefix of `parts` that is a module of the crate.
fn resolve(modules: &BTreeSet<Vec<String>>, parts: &[String]) -> Option<Vec<String>> {
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].to_vec())
        .find(|p| modules.contains(p))
}

/// Paths after `prefix` (`crate::` or `super::`) in code, not in comments.
fn paths_after<'a>(code: &'a str, prefix: &'a str) -> impl Iterator<Item = Vec<String>> + 'a {
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(move |line| {
            line.match_indices(prefix).map(move |(i, _)| {
                line[i + prefix.len()..]
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
        })
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        // Everything from the first test module on is test code.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let me = module_of(&src, file);
        let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
        let mut deps = BTreeSet::new();
        for path in paths_after(code, "crate::") {
            deps.extend(resolve(&modules, &path));
        }
        for path in paths_after(code, "super::") {
            let full: Vec<String> = parent.iter().cloned().chain(path).collect();
            deps.extend(resolve(&modules, &full));
        }
        deps.remove(&me);
        edges.insert(me, deps);
    }
    assert!(edges.len() > 40, "read the crate: {} files", edges.len());

    // A path back from each dependency to the file itself is a cycle.
    let mut cycles = Vec::new();
    for (from, deps) in &edges {
        for dep in deps {
            let mut seen = BTreeSet::new();
            let mut stack = vec![dep.clone()];
            while let Some(m) = stack.pop() {
                if &m == from {
                    cycles.push(format!("{} → {}", from.join("::"), dep.join("::")));
                    break;
                }
                if seen.insert(m.clone()) {
                    stack.extend(edges.get(&m).into_iter().flatten().cloned());
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}
