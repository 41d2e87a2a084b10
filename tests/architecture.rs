#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

//! The architecture, checked: reads `src/` as text and builds the module graph from its `use`
//! declarations and paths, then holds the code to the rules of `docs/ARCHITECTURE.md`:
//!
//! 1. no import circle between the files of `src/` (test modules excluded);
//! 2. the layers point one way: runtime (`src/edge/`) -> service (`src/app/`) -> storage
//!    contracts (`src/store*`, `src/storage/`, `src/model.rs`, a folder's own `store.rs`, the
//!    in-memory backends) -> everything else (the pure protocol and formats); a file may use its
//!    own layer and the ones below it only;
//! 3. a capability folder of `src/app/` (`src/app/<capability>/`) is used by other parts of
//!    `src/app/` through its public face (`mod.rs`) only, never through its inner files;
//! 4. the shared pieces of `src/app/` (its files outside capability folders: configuration,
//!    request context, isolate state, ...) use no capability and not the router;
//! 5. production code never uses the in-memory test backends (`src/testing/`, and any module
//!    declared under `cfg(any(test, ...))` like it);
//! 6. no source file but tests is over 600 lines;
//! 7. comments never cite issue numbers (in `src/`, and in the tests, scripts, benchmark, fuzz
//!    targets and migrations).
//!
//! It also draws the picture of the layers and capabilities that opens `docs/ARCHITECTURE.md`
//! (between the `<!-- architecture:begin -->` and `<!-- architecture:end -->` markers) and fails
//! when the document shows another picture; `UPDATE_ARCHITECTURE=1 cargo test --test
//! architecture` rewrites it.
//!
//! The reading is textual (no compiler): comments, strings and `#[cfg(test)]` items are
//! removed, then every `use` tree and every path that starts with `crate::`, `super::`,
//! `self::` or a child module's name is resolved to the deepest module file it names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

/// One source file: its module path (`["app", "gate"]` for `src/app/gate.rs`) and text.
struct Module {
    path: Vec<String>,
    file: String,
    lines: usize,
    /// Code with comments, strings and `#[cfg(test)]` items removed.
    code: String,
    /// Raw text (for the comment rule).
    raw: String,
    /// Declared only under `#[cfg(test)]`: tests and test helpers.
    test_only: bool,
    /// Test support that other builds compile too, declared under `cfg(any(test, ...))` (or an
    /// ancestor is): the in-memory backends (`src/testing/`, `src/authz/memory.rs`).
    test_backend: bool,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

fn collect(dir: &Path, root: &Path, out: &mut Vec<(Vec<String>, String, String)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            // Binaries are tools, not part of the library's layers.
            if p.strip_prefix(root).is_ok_and(|r| r == Path::new("bin")) {
                continue;
            }
            collect(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let text = fs::read_to_string(&p).unwrap_or_default();
            out.push((module_path(rel), format!("src/{}", rel.display()), text));
        }
    }
}

/// Removes comments and the contents of string and char literals, keeping line structure.
/// One pass of a small lexer: its cases read best together.
#[allow(clippy::too_many_lines, clippy::many_single_char_names)]
fn strip_comments_and_strings(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // Raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                if b[j] == b'\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if i < b.len() && b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a): a literal closes soon.
            let close = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                // Multi-byte UTF-8 char literal.
                let rest = &s[i + 1..];
                rest.chars()
                    .next()
                    .filter(|ch| ch.len_utf8() > 1 && rest[ch.len_utf8()..].starts_with('\''))
                    .map(|ch| i + 1 + ch.len_utf8())
            };
            if let Some(end) = close {
                out.push_str("' '");
                i = end + 1;
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            // Copy one whole UTF-8 character.
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Whether an attribute's text is exactly `cfg(test)`. Test support that other builds also
/// compile (`cfg(any(test, feature = "tools"))`: the in-memory backends) is not test code here:
/// it has layers and a size like any other module ([`is_test_support_cfg`]).
fn is_test_cfg(attr: &str) -> bool {
    let a: String = attr.chars().filter(|c| !c.is_whitespace()).collect();
    a == "cfg(test)"
}

/// Whether an attribute compiles its item for tests and some other build too
/// (`cfg(any(test, feature = "tools"))`).
fn is_test_support_cfg(attr: &str) -> bool {
    let a: String = attr.chars().filter(|c| !c.is_whitespace()).collect();
    a.starts_with("cfg(any(test,")
}

/// The child modules declared under a test-support `cfg` (`#[cfg(any(test, ...))] mod x;`).
fn test_support_mods(code: &str) -> BTreeSet<String> {
    let b = code.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while let Some(p) = code[i..].find("#[") {
        let at = i + p;
        let end = matching(b, at + 1, b'[', b']');
        i = end + 1;
        if !is_test_support_cfg(&code[at + 2..end]) {
            continue;
        }
        let rest = code[end + 1..].trim_start();
        let words: Vec<&str> = rest
            .split(|c: char| c.is_whitespace() || c == ';')
            .filter(|w| !w.is_empty())
            .take(3)
            .collect();
        if let Some(m) = words.iter().position(|w| *w == "mod") {
            if let Some(name) = words.get(m + 1) {
                out.insert((*name).to_owned());
            }
        }
    }
    out
}

/// Removes every item under `#[cfg(test)]`; returns the code and the names of child modules
/// declared under it (`#[cfg(test)] mod tests;`).
fn strip_test_items(code: &str) -> (String, BTreeSet<String>) {
    let b = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut test_mods = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'#' && b.get(i + 1) == Some(&b'[') {
            let end = matching(b, i + 1, b'[', b']');
            let attr = &code[i + 2..end];
            if is_test_cfg(attr) {
                // Skip further attributes, then the item: up to `;` or a balanced `{}` block.
                let mut j = end + 1;
                loop {
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if b.get(j) == Some(&b'#') && b.get(j + 1) == Some(&b'[') {
                        j = matching(b, j + 1, b'[', b']') + 1;
                    } else {
                        break;
                    }
                }
                let start = j;
                while j < b.len() && b[j] != b';' && b[j] != b'{' {
                    j += 1;
                }
                let head = &code[start..j.min(code.len())];
                if b.get(j) == Some(&b';') {
                    let words: Vec<&str> = head.split_whitespace().collect();
                    if let Some(p) = words.iter().position(|w| *w == "mod") {
                        if let Some(name) = words.get(p + 1) {
                            test_mods.insert((*name).to_owned());
                        }
                    }
                    j += 1;
                } else if j < b.len() {
                    j = matching(b, j, b'{', b'}') + 1;
                }
                for ch in code[i..j.min(code.len())].chars() {
                    if ch == '\n' {
                        out.push('\n');
                    }
                }
                i = j;
                continue;
            }
        }
        let ch = code[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    (out, test_mods)
}

fn matching(b: &[u8], open_at: usize, open: u8, close: u8) -> usize {
    let mut depth = 0;
    let mut i = open_at;
    while i < b.len() {
        if b[i] == open {
            depth += 1;
        } else if b[i] == close {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
        i += 1;
    }
    b.len().saturating_sub(1)
}

/// A file read: its module path, file name, raw text, code, and child modules declared for tests
/// and for test support.
type Stripped = (
    Vec<String>,
    String,
    String,
    String,
    BTreeSet<String>,
    BTreeSet<String>,
);

fn load() -> Vec<Module> {
    let root = src_dir();
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    let mut stripped: Vec<Stripped> = files
        .into_iter()
        .map(|(path, file, raw)| {
            let clean = strip_comments_and_strings(&raw);
            let support = test_support_mods(&clean);
            let (code, test_mods) = strip_test_items(&clean);
            (path, file, raw, code, test_mods, support)
        })
        .collect();
    // A module is test-only when its parent declares it under #[cfg(test)], or an ancestor is;
    // test support likewise.
    let mut test_only: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut support: BTreeSet<Vec<String>> = BTreeSet::new();
    for (path, _, _, _, test_mods, support_mods) in &stripped {
        for (set, mods) in [(&mut test_only, test_mods), (&mut support, support_mods)] {
            for m in mods {
                let mut p = path.clone();
                p.push(m.clone());
                set.insert(p);
            }
        }
    }
    stripped.sort_by(|a, b| a.0.cmp(&b.0));
    stripped
        .into_iter()
        .map(|(path, file, raw, code, _, _)| Module {
            test_only: (1..=path.len()).any(|n| test_only.contains(&path[..n])),
            test_backend: (1..=path.len()).any(|n| support.contains(&path[..n])),
            lines: raw.lines().count(),
            path,
            file,
            code,
            raw,
        })
        .collect()
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Every `use` declaration's tree, expanded into paths (`use a::{b, c::d}` -> `a::b`, `a::c::d`).
fn use_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let mut i = 0;
    while let Some(p) = code[i..].find("use ") {
        let at = i + p;
        i = at + 4;
        if at > 0 && is_ident_byte(b[at - 1]) {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            break;
        };
        // Whitespace goes, except that the keyword `as` becomes `@` (an `as` inside a name, as in
        // `assets` or `TokenHash`, stays part of the name).
        let tree: String = code[at + 4..at + end]
            .split_whitespace()
            .map(|w| if w == "as" { "@" } else { w })
            .collect();
        expand(&tree, &mut Vec::new(), &mut out);
        i = at + end;
    }
    out
}

fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim_start_matches("::");
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let n = prefix.len();
        prefix.extend(head);
        let mut depth = 0;
        let mut start = 0;
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..k], prefix, out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], prefix, out);
        prefix.truncate(n);
    } else if !tree.is_empty() {
        let tree = tree.split('@').next().unwrap_or(tree);
        let mut p = prefix.clone();
        p.extend(
            tree.split("::")
                .filter(|s| !s.is_empty() && *s != "*")
                .map(str::to_owned),
        );
        if p.last().is_some_and(|l| l == "self") {
            p.pop();
        }
        out.push(p);
    }
}

/// `code` without its `use` declarations (read by [`use_paths`]): a group such as
/// `crate::app::{ctx, user}` is not a path to `crate::app`.
fn without_uses(code: &str) -> String {
    let b = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while let Some(p) = code[i..].find("use ") {
        let at = i + p;
        if at > 0 && is_ident_byte(b[at - 1]) {
            out.push_str(&code[i..at + 4]);
            i = at + 4;
            continue;
        }
        let end = code[at..].find(';').map_or(code.len(), |e| at + e + 1);
        out.push_str(&code[i..at]);
        out.extend(code[at..end].chars().filter(|c| *c == '\n'));
        i = end;
    }
    out.push_str(&code[i..]);
    out
}

/// Paths in code (not `use`) that start with `crate`, `super` or `self`, or with one of `firsts`.
fn code_paths(code: &str, firsts: &BTreeSet<String>) -> Vec<Vec<String>> {
    let code = without_uses(code);
    let code = code.as_str();
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if is_ident_byte(b[i]) && (i == 0 || !(is_ident_byte(b[i - 1]) || b[i - 1] == b':')) {
            let mut segs = Vec::new();
            let mut j = i;
            loop {
                let s = j;
                while j < b.len() && is_ident_byte(b[j]) {
                    j += 1;
                }
                segs.push(code[s..j].to_owned());
                if code[j..].starts_with("::") && b.get(j + 2).is_some_and(|&c| is_ident_byte(c)) {
                    j += 2;
                } else {
                    break;
                }
            }
            if segs.len() > 1
                && (matches!(segs[0].as_str(), "crate" | "super" | "self")
                    || firsts.contains(&segs[0]))
            {
                out.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Resolves a path used in module `from` to the deepest module (file) it names.
fn resolve(
    from: &[String],
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut cur: Vec<String> = Vec::new();
    let mut segs = path.iter().peekable();
    match segs.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segs.next();
        }
        Some("super") => {
            // `super` of `a/b.rs` (a::b) is a; of `a/b/mod.rs` (a::b) also a.
            cur = from.to_vec();
            while segs.peek().is_some_and(|s| *s == "super") {
                segs.next();
                cur.pop()?;
            }
        }
        Some("self") => {
            segs.next();
            cur = from.to_vec();
        }
        Some(first) => {
            // 2018 paths: a child module of the current one, else an external crate.
            let mut child = from.to_vec();
            child.push(first.to_owned());
            if !modules.contains(&child) {
                return None;
            }
            cur = from.to_vec();
        }
        None => return None,
    }
    for s in segs {
        let mut next = cur.clone();
        next.push(s.clone());
        if modules.contains(&next) {
            cur = next;
        } else {
            break;
        }
    }
    Some(cur)
}

struct Graph {
    modules: Vec<Module>,
    /// Production dependencies between modules (by index), self-edges removed.
    edges: BTreeMap<usize, BTreeSet<usize>>,
}

fn graph() -> Graph {
    let modules = load();
    let known: BTreeSet<Vec<String>> = modules.iter().map(|m| m.path.clone()).collect();
    let index: BTreeMap<Vec<String>, usize> = modules
        .iter()
        .enumerate()
        .map(|(i, m)| (m.path.clone(), i))
        .collect();
    let mut edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (i, m) in modules.iter().enumerate() {
        if m.test_only {
            continue;
        }
        let children: BTreeSet<String> = known
            .iter()
            .filter(|p| p.len() == m.path.len() + 1 && p.starts_with(&m.path))
            .filter_map(|p| p.last().cloned())
            .collect();
        let mut paths = use_paths(&m.code);
        paths.extend(code_paths(&m.code, &children));
        for p in paths {
            if let Some(target) = resolve(&m.path, &p, &known) {
                if let Some(&t) = index.get(&target) {
                    if t != i && !modules[t].test_only {
                        edges.entry(i).or_default().insert(t);
                    }
                }
            }
        }
    }
    Graph { modules, edges }
}

/// Strongly connected components with more than one module (Tarjan).
fn circles(g: &Graph) -> Vec<Vec<usize>> {
    struct T<'a> {
        g: &'a Graph,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        let succ: Vec<usize> = t.g.edges.get(&v).into_iter().flatten().copied().collect();
        for w in succ {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort_unstable();
                t.out.push(comp);
            }
        }
    }
    let n = g.modules.len();
    let mut t = T {
        g,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The layer of a module: 3 runtime, 2 service, 1 storage contracts, 0 pure. Storage contracts
/// are `store.rs`, `storage/` and `model.rs`, a folder's own storage traits (a `store.rs` inside
/// it, e.g. `authz/store.rs`), and the in-memory backends that implement them.
fn layer(m: &Module) -> (u8, &'static str) {
    let path = &m.path;
    match path.first().map(String::as_str) {
        Some("edge") => (3, "runtime"),
        Some("app") => (2, "service"),
        Some(s)
            if s == "store"
                || s.starts_with("store_")
                || s == "storage"
                || s == "model"
                || s == "testing"
                || m.test_backend
                || path.last().is_some_and(|l| l == "store") =>
        {
            (1, "storage contracts")
        }
        _ => (0, "pure"),
    }
}

fn name(m: &Module) -> String {
    m.file.clone()
}

#[test]
fn no_import_circle() {
    let g = graph();
    let found = circles(&g);
    let mut msg = String::new();
    for c in &found {
        let names: Vec<String> = c.iter().map(|&i| name(&g.modules[i])).collect();
        let _ = writeln!(msg, "circle of {} files: {}", c.len(), names.join(", "));
        // The arrows inside the circle: one of them has to go.
        for &i in c {
            for &j in g.edges.get(&i).into_iter().flatten() {
                if c.contains(&j) {
                    let _ = writeln!(
                        msg,
                        "    {} -> {}",
                        name(&g.modules[i]),
                        name(&g.modules[j])
                    );
                }
            }
        }
    }
    assert!(found.is_empty(), "import circles in src/:\n{msg}");
}

#[test]
fn layers_point_one_way() {
    let g = graph();
    let mut bad = Vec::new();
    for (&from, tos) in &g.edges {
        let (lf, nf) = layer(&g.modules[from]);
        for &to in tos {
            let (lt, nt) = layer(&g.modules[to]);
            if lt > lf {
                bad.push(format!(
                    "{} ({nf}) uses {} ({nt})",
                    name(&g.modules[from]),
                    name(&g.modules[to])
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "arrows running up the layers:\n{}",
        bad.join("\n")
    );
}

/// The capability a module of `src/app/` belongs to: its folder under `src/app/`, if any.
fn capability(m: &Module) -> Option<&str> {
    if m.path.first().map(String::as_str) != Some("app") {
        return None;
    }
    let in_folder = m.file.matches('/').count() >= 3;
    if in_folder {
        m.path.get(1).map(String::as_str)
    } else {
        None
    }
}

#[test]
fn capabilities_are_used_through_their_public_face() {
    let g = graph();
    let mut bad = Vec::new();
    for (&from, tos) in &g.edges {
        let f = &g.modules[from];
        for &to in tos {
            let t = &g.modules[to];
            let Some(cap) = capability(t) else { continue };
            let face = t.path.len() == 2;
            if !face && capability(f) != Some(cap) {
                bad.push(format!("{} reaches into {}", name(f), name(t)));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "capability internals used from outside:\n{}",
        bad.join("\n")
    );
}

/// Whether a module is one of the shared pieces of `src/app/`: a file directly in `src/app/`
/// other than the router (`src/app/mod.rs`) and the service's host tests.
fn shared_piece(m: &Module) -> bool {
    m.path.first().map(String::as_str) == Some("app")
        && m.path.len() == 2
        && capability(m).is_none()
}

#[test]
fn shared_pieces_use_no_capability() {
    let g = graph();
    let mut bad = Vec::new();
    for (&from, tos) in &g.edges {
        let f = &g.modules[from];
        if !shared_piece(f) {
            continue;
        }
        for &to in tos {
            let t = &g.modules[to];
            if capability(t).is_some() || t.path == ["app"] {
                bad.push(format!("{} uses {}", name(f), name(t)));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "shared pieces of src/app/ using a capability or the router:\n{}",
        bad.join("\n")
    );
}

#[test]
fn production_code_never_uses_the_test_backend() {
    let g = graph();
    let in_backend = |m: &Module| m.test_backend;
    let mut bad = Vec::new();
    for (&from, tos) in &g.edges {
        let f = &g.modules[from];
        if !in_backend(f) && tos.iter().any(|&t| in_backend(&g.modules[t])) {
            bad.push(name(f));
        }
    }
    assert!(
        bad.is_empty(),
        "production modules using the in-memory backend (src/testing): {bad:?}"
    );
}

#[test]
fn no_source_file_over_600_lines() {
    let g = graph();
    let bad: Vec<String> = g
        .modules
        .iter()
        .filter(|m| !m.test_only && m.lines > MAX_LINES)
        .map(|m| format!("{} ({} lines)", m.file, m.lines))
        .collect();
    assert!(
        bad.is_empty(),
        "non-test files over {MAX_LINES} lines:\n{}",
        bad.join("\n")
    );
}

/// The comment part of a line of a file with extension `ext` (Rust, JavaScript, SQL), if any:
/// after `//` (`--` in SQL), or a line inside a block comment (`/*`, ` *`).
fn comment_of<'a>(line: &'a str, ext: &str) -> Option<&'a str> {
    let marker = if ext == "sql" { "--" } else { "//" };
    if let Some(c) = line.find(marker) {
        return Some(&line[c..]);
    }
    let t = line.trim_start();
    (ext != "sql" && (t.starts_with("/*") || t.starts_with('*'))).then_some(t)
}

/// Whether a comment cites an issue by its number (the word, then digits, maybe after `#`).
fn cites_issue(comment: &str) -> bool {
    let comment = comment.to_ascii_lowercase();
    let mut rest = comment.as_str();
    while let Some(p) = rest.find("issue") {
        let after = rest[p + 5..].trim_start_matches([' ', '#']);
        if after.starts_with(|ch: char| ch.is_ascii_digit()) {
            return true;
        }
        rest = &rest[p + 5..];
    }
    false
}

/// Every source file outside `src/` whose comments the rule also covers: tests, scripts, the
/// benchmark, fuzz targets and migrations (`node_modules` and generated state left out).
fn other_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if p.is_dir() {
                if !name.starts_with('.') && name != "node_modules" && name != "target" {
                    walk(&p, root, out);
                }
            } else if ["rs", "mjs", "js", "sql"]
                .iter()
                .any(|e| p.extension().is_some_and(|x| x == *e))
            {
                let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
                out.push((rel, fs::read_to_string(&p).unwrap_or_default()));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["tests", "scripts", "bench", "fuzz", "migrations"] {
        walk(&root.join(dir), root, &mut out);
    }
    out
}

#[test]
fn comments_cite_no_issue_numbers() {
    let g = graph();
    let mut files: Vec<(String, String)> = g
        .modules
        .iter()
        .map(|m| (m.file.clone(), m.raw.clone()))
        .collect();
    files.extend(other_sources());
    let mut bad = Vec::new();
    for (file, text) in &files {
        let ext = file.rsplit('.').next().unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if comment_of(line, ext).is_some_and(cites_issue) {
                bad.push(format!("{file}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "comments citing issue numbers:\n{}",
        bad.join("\n")
    );
}

/// A list of names, wrapped under `indent` before 96 columns.
fn wrapped(out: &mut String, first: &str, indent: usize, names: &[&str], sep: &str) {
    let mut line = first.to_owned();
    for (i, n) in names.iter().enumerate() {
        let piece = if i + 1 < names.len() {
            format!("{n}{sep}")
        } else {
            (*n).to_owned()
        };
        if line.len() + piece.len() > 96 && line.trim().len() > first.trim().len() {
            let _ = writeln!(out, "{}", line.trim_end());
            line = " ".repeat(indent);
        }
        line.push_str(&piece);
    }
    let _ = writeln!(out, "{}", line.trim_end());
}

/// The picture: each layer with its parts (top-level modules; in the service, the router, the
/// capability folders and the shared pieces of `src/app/`), then the arrows between the parts of
/// the runtime and the service, drawn from the module graph (arrows into the layers below are
/// left out: every part has some, and [`layers_point_one_way`] holds them).
fn picture(g: &Graph) -> String {
    // A folder's storage traits or in-memory backend (`authz/store.rs`) sit in another layer than
    // the rest of their folder: they are named by their path.
    let part = |m: &Module| -> String {
        match m.path.as_slice() {
            [] => "lib".to_owned(),
            [first, second, ..] if first == "app" => format!("app/{second}"),
            [first, _, ..]
                if layer(m).0 == 1 && !["testing", "storage"].contains(&first.as_str()) =>
            {
                m.path.join("/")
            }
            [first, ..] => first.clone(),
        }
    };
    let mut layers: BTreeMap<u8, (&str, BTreeSet<String>)> = BTreeMap::new();
    let (mut capabilities, mut shared) = (BTreeSet::new(), BTreeSet::new());
    let mut arrows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in g
        .modules
        .iter()
        .filter(|m| !m.test_only && !m.path.is_empty())
    {
        let (l, n) = layer(m);
        layers
            .entry(l)
            .or_insert((n, BTreeSet::new()))
            .1
            .insert(part(m));
        if capability(m).is_some() {
            capabilities.insert(part(m));
        } else if shared_piece(m) {
            shared.insert(part(m));
        }
    }
    for (&from, tos) in &g.edges {
        let f = &g.modules[from];
        if f.path.is_empty() {
            continue;
        }
        for &to in tos {
            let (pf, pt) = (part(f), part(&g.modules[to]));
            if pf != pt && layer(f).0 >= 2 && layer(&g.modules[to]).0 >= 2 {
                arrows.entry(pf).or_default().insert(pt);
            }
        }
    }
    let list = |set: &BTreeSet<String>| -> Vec<String> {
        set.iter()
            .map(|p| p.trim_start_matches("app/").to_owned())
            .collect()
    };
    let mut s = String::from("```text\n");
    for (&l, (n, parts)) in layers.iter().rev() {
        if l == 2 {
            let _ = writeln!(s, "{n} (src/app/):");
            let caps = list(&capabilities);
            let sh = list(&shared);
            wrapped(&mut s, "    router:       ", 18, &["app (mod.rs)"], "");
            let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
            wrapped(&mut s, "    capabilities: ", 18, &caps, " ");
            let sh: Vec<&str> = sh.iter().map(String::as_str).collect();
            wrapped(&mut s, "    shared:       ", 18, &sh, " ");
        } else {
            let _ = writeln!(s, "{n}:");
            let names: Vec<&str> = parts.iter().map(String::as_str).collect();
            wrapped(&mut s, "    ", 4, &names, " ");
        }
    }
    s.push_str(
        "\nuses, inside the runtime and the service (every part also uses the layers below):\n",
    );
    for (from, tos) in &arrows {
        let names: Vec<&str> = tos.iter().map(String::as_str).collect();
        let head = format!("  {from} -> ");
        let indent = head.len();
        wrapped(&mut s, &head, indent, &names, ", ");
    }
    s.push_str("```\n");
    s
}

#[test]
fn architecture_document_shows_the_code() {
    const BEGIN: &str = "<!-- architecture:begin -->\n";
    const END: &str = "<!-- architecture:end -->";
    let g = graph();
    let pic = picture(&g);
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md");
    let doc = fs::read_to_string(&doc_path).unwrap_or_default();
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/ARCHITECTURE.md has no {BEGIN:?} ... {END:?} block");
    };
    let current = &doc[b + BEGIN.len()..e];
    if current != pic {
        if std::env::var_os("UPDATE_ARCHITECTURE").is_some() {
            let new = format!("{}{BEGIN}{pic}{}", &doc[..b], &doc[e..]);
            fs::write(&doc_path, new).unwrap_or_else(|e| panic!("write: {e}"));
        } else {
            panic!(
                "docs/ARCHITECTURE.md's picture differs from the code; run \
                 `UPDATE_ARCHITECTURE=1 cargo test --test architecture`. The code's picture:\n{pic}"
            );
        }
    }
}

/// The reader itself: `use` trees, renames, names that contain `as`, and block comments.
#[test]
fn the_reader_reads_use_trees() {
    let code = strip_comments_and_strings(
        "use crate::storage::kv::{self as kv_format, Denied};\n\
         use super::assets::SCRIPT;\n\
         use crate::token::TokenHash as H; /* use crate::nothing; */\n\
         let s = \"use crate::neither;\";\n",
    );
    let paths: Vec<String> = use_paths(&code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "crate::storage::kv",
            "crate::storage::kv::Denied",
            "super::assets::SCRIPT",
            "crate::token::TokenHash"
        ]
    );
    let in_code: Vec<String> = code_paths(
        "use crate::app::{ctx, user};\nfn f() { crate::http::Response::empty(204); }",
        &BTreeSet::new(),
    )
    .iter()
    .map(|p| p.join("::"))
    .collect();
    assert_eq!(in_code, ["crate::http::Response::empty"]);
    let support = test_support_mods(&strip_comments_and_strings(
        "#[cfg(any(test, feature = \"tools\"))]\npub mod testing;\n#[cfg(test)]\nmod tests;\n",
    ));
    assert_eq!(support.into_iter().collect::<Vec<_>>(), ["testing"]);
    assert!(cites_issue(&format!("// see Issue #{}", 12)));
    assert!(!cites_issue("// the issuer's keys, 2 issues ago"));
}
