//! The server crate's modules form no import circle: a module never uses, directly or through
//! others, a module that uses it back. The router (`http`) is the one module that knows every
//! handler; handlers share the leaf modules (`response`, `request`) instead of importing the
//! router back. Read from the sources (`crate::x` paths outside comments; `rpc/*` counts as
//! `rpc`), so a new circle fails here rather than in review.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name -> the modules it names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let module = top.to_string_lossy().trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let used = graph.entry(module.clone()).or_default();
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for name in crate_paths(code) {
                if name != module {
                    used.insert(name);
                }
            }
        }
    }
    graph
}

/// The first segment of every `crate::` path on a line, `use crate::{a, b::c}` included.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first segment of each top-level item of the group.
            let (mut depth, mut item, mut at_start) = (0, String::new(), true);
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(std::mem::take(&mut item));
                        at_start = true;
                    }
                    c if depth == 0 && at_start && (c.is_ascii_alphanumeric() || c == '_') => {
                        item.push(c)
                    }
                    c if !c.is_whitespace() && !item.is_empty() => at_start = false,
                    _ => {}
                }
            }
            out.push(item);
            out.retain(|p| !p.is_empty() && p != "self");
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// A circle through `start`, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == start {
                let mut found = path.clone();
                found.push(next.clone());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = imports();
    assert!(graph.contains_key("http") && graph.contains_key("receive_pack"));
    let circles: Vec<String> = graph
        .keys()
        .filter_map(|m| circle(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_reader_finds_grouped_and_inline_paths() {
    assert_eq!(
        crate_paths("use crate::{app::App, body::{self, full}, repo};"),
        ["app", "body", "repo"]
    );
    assert_eq!(
        crate_paths("x(crate::metrics::inc(crate::metrics::PUSHES))"),
        ["metrics", "metrics"]
    );
}
