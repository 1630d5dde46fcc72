//! The crate's modules form no circle: reading every `src/**/*.rs`, this test finds what
//! each file names of the crate (`use` lines and paths in code: `crate::a::b`, `super::`,
//! a child module of its own) and checks that the graph of files has no cycle. A cycle
//! means a concept sits on the wrong floor (see the domain's module documentation).
//!
//! Comments, strings and character literals are left out: a doc link is no dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module by its path from the crate root: `["domain", "limits"]`; `[]` is `lib.rs`.
type Module = Vec<String>;
type Graph = BTreeMap<Module, BTreeSet<Module>>;

#[test]
fn the_crate_has_no_cycle_of_modules() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.len() > 30 && graph.contains_key(&module("domain::limits")), "the scan found the crate's files");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("the modules form a cycle: {}", cycle.iter().map(name).collect::<Vec<_>>().join(" -> "));
    }
}

#[test]
fn the_domain_imports_nothing_above_it() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    for (from, edges) in graph.iter().filter(|(m, _)| m.first().is_some_and(|m| m == "domain")) {
        for to in edges {
            assert_eq!(to.first().map(String::as_str), Some("domain"), "{} uses {}", name(from), name(to));
        }
    }
}

#[test]
fn the_scanner_sees_groups_renames_relative_paths_and_super_but_no_comments() {
    let modules: BTreeSet<Module> =
        ["", "a", "a::b", "a::b::e", "a::c", "a::d", "a::f", "x"].iter().map(|m| module(m)).collect();
    let source = r#"
        //! See [`crate::x`].
        use crate::a::{b::{self, Thing}, c as see};
        pub mod e;
        use e::Item;
        fn f() -> crate::a::d::Type<u8> { super::f::g(); let _ = ("crate::x", '\'', br"crate::x\", '\\'); }
        mod tests { use super::*; use super::super::super::x; }
    "#;
    let found = references(&module("a::b"), source, &modules);
    let expected: BTreeSet<Module> = ["a::b::e", "a::c", "a::d", "a::f", "x"].iter().map(|m| module(m)).collect();
    assert_eq!(found, expected, "a::b itself and the comment's crate::x are not dependencies");
}

#[test]
fn a_cycle_is_found_and_named_in_order() {
    let edge = |from: &str, to: &[&str]| (module(from), to.iter().map(|m| module(m)).collect());
    let acyclic: Graph = [edge("a", &["b", "c"]), edge("b", &["c"]), edge("c", &[])].into_iter().collect();
    assert_eq!(find_cycle(&acyclic), None);
    let cyclic: Graph = [edge("a", &["b"]), edge("b", &["c"]), edge("c", &["a"])].into_iter().collect();
    assert_eq!(find_cycle(&cyclic), Some(["a", "b", "c", "a"].iter().map(|m| module(m)).collect()));
}

fn module(path: &str) -> Module {
    path.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// Every file of the crate under `src` and the modules each one uses.
fn graph(src: &Path) -> Graph {
    let mut files = BTreeMap::new();
    collect(src, &mut Vec::new(), &mut files);
    let modules: BTreeSet<Module> = files.keys().cloned().collect();
    files.iter().map(|(module, text)| (module.clone(), references(module, text, &modules))).collect()
}

fn collect(dir: &Path, at: &mut Vec<String>, files: &mut BTreeMap<Module, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            at.push(stem);
            collect(&path, at, files);
            at.pop();
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut module = at.clone();
            if !(stem == "mod" || (stem == "lib" && at.is_empty())) {
                module.push(stem);
            }
            files.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The modules of `modules` that the file of `this` names, itself excepted.
fn references(this: &Module, text: &str, modules: &BTreeSet<Module>) -> BTreeSet<Module> {
    let tokens = tokens(&code(text));
    let children: BTreeSet<&str> =
        tokens.windows(3).filter(|w| w[0] == "mod" && w[2] == ";").map(|w| w[1].as_str()).collect();
    let inline = inline_modules(&tokens);
    let mut found = BTreeSet::new();
    for start in 0..tokens.len() {
        let head = tokens[start].as_str();
        let starts_path = tokens.get(start + 1).is_some_and(|t| t == "::")
            && (start == 0 || tokens[start - 1] != "::")
            && (head == "crate" || head == "super" || head == "self" || children.contains(head));
        if !starts_path {
            continue;
        }
        let depth = inline.iter().filter(|(open, close)| *open < start && start < *close).count();
        for path in parse_tree(&tokens, start).0 {
            let Some(absolute) = absolute(this, depth, &path) else {
                continue;
            };
            let target = (0..=absolute.len()).rev().map(|n| &absolute[..n]).find(|m| modules.contains(*m));
            if let Some(target) = target.filter(|t| *t != this.as_slice()) {
                found.insert(target.to_vec());
            }
        }
    }
    found
}

/// A path as written in the file of `this`, `depth` inline modules deep, from the crate
/// root; `None` when it stays within the file.
fn absolute(this: &Module, depth: usize, path: &[String]) -> Option<Module> {
    let segments = path.iter().filter(|s| *s != "self" && *s != "*");
    match path.first().map(String::as_str) {
        Some("crate") => Some(segments.skip(1).cloned().collect()),
        Some("super") => {
            let ups = path.iter().take_while(|s| *s == "super").count();
            let above = ups.checked_sub(depth).filter(|n| *n > 0)?;
            let mut absolute: Module = this[..this.len().checked_sub(above)?].to_vec();
            absolute.extend(segments.skip(ups).cloned());
            Some(absolute)
        }
        Some("self") if depth > 0 => None,
        _ => Some(this.iter().chain(segments).cloned().collect()),
    }
}

/// The paths a path starting at `start` spells out, `{ }` groups expanded (`a::{b, c::d}`
/// is `a::b` and `a::c::d`), and the index after it.
fn parse_tree(tokens: &[String], mut at: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        match tokens.get(at).map(String::as_str) {
            Some("{") => {
                at += 1;
                let mut paths = Vec::new();
                while at < tokens.len() && tokens[at] != "}" {
                    let (subs, next) = parse_tree(tokens, at);
                    paths.extend(subs.into_iter().map(|s| [prefix.clone(), s].concat()));
                    // Skip a rename (`as name`) up to the next item of the group.
                    at = next.max(at + 1);
                    while at < tokens.len() && tokens[at] != "," && tokens[at] != "}" {
                        at += 1;
                    }
                    if tokens.get(at).is_some_and(|t| t == ",") {
                        at += 1;
                    }
                }
                return (paths, at + 1);
            }
            Some(word) if word == "*" || is_identifier(word) => {
                prefix.push(word.to_owned());
                at += 1;
                if tokens.get(at).is_some_and(|t| t == "::") {
                    at += 1;
                } else {
                    return (vec![prefix], at);
                }
            }
            _ => return (vec![prefix], at),
        }
    }
}

/// The token ranges `{` .. `}` of the inline modules (`mod tests { .. }`).
fn inline_modules(tokens: &[String]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    for open in 2..tokens.len() {
        if tokens[open] == "{" && tokens[open - 2] == "mod" && is_identifier(&tokens[open - 1]) {
            let mut depth = 0usize;
            let close = (open..tokens.len()).find(|i| {
                match tokens[*i].as_str() {
                    "{" => depth += 1,
                    "}" => depth -= 1,
                    _ => {}
                }
                depth == 0
            });
            ranges.push((open, close.unwrap_or(tokens.len())));
        }
    }
    ranges
}

fn is_identifier(word: &str) -> bool {
    word.starts_with(|c: char| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::` and single punctuation characters.
fn tokens(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".to_owned());
            i += 2;
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    tokens
}

/// The source with comments, string literals and character literals blanked out.
fn code(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let identifier = |j: usize| j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_');
        // `r"..."` and `br"..."` open raw strings; `for"` or `bar"` would not.
        let after_identifier = i > 0 && identifier(i - 1) && !(chars[i - 1] == 'b' && (i < 2 || !identifier(i - 2)));
        let hashes = (i + 1..chars.len()).take_while(|j| chars[*j] == '#').count();
        if at(i) == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if at(i) == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else if i >= chars.len() {
                    break;
                } else {
                    i += 1;
                }
            }
        } else if at(i) == 'r' && !after_identifier && at(i + 1 + hashes) == '"' {
            // A raw string: up to a quote followed by as many hashes.
            i += hashes + 2;
            while i < chars.len() && !(chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#')) {
                i += 1;
            }
            i += hashes + 1;
        } else if at(i) == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if at(i) == '\'' && (at(i + 2) == '\'' || at(i + 1) == '\\') {
            // A character literal (a lifetime has no closing quote), escapes included.
            i += if at(i + 1) == '\\' { 3 } else { 2 };
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        out.push(' ');
    }
    out
}

/// A cycle of `graph`, as the modules along it with the first repeated at the end.
fn find_cycle(graph: &Graph) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Open,
        Done,
    }
    fn visit<'a>(
        graph: &'a Graph,
        node: &'a Module,
        state: &mut BTreeMap<&'a Module, State>,
        stack: &mut Vec<&'a Module>,
    ) -> Option<Vec<Module>> {
        state.insert(node, State::Open);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(State::Open) => {
                    let from = stack.iter().position(|m| *m == next).unwrap_or(0);
                    let mut cycle: Vec<Module> = stack[from..].iter().map(|m| (*m).clone()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(State::Done) => {}
                None => {
                    if let Some(cycle) = visit(graph, next, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node, State::Done);
        None
    }
    let mut state = BTreeMap::new();
    graph.keys().find_map(|node| match state.get(node) {
        None => visit(graph, node, &mut state, &mut Vec::new()),
        Some(_) => None,
    })
}
