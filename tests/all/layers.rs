//! The library's module graph stays layered: no import cycles between files,
//! and a file only imports files of its own layer or of lower ones.
//!
//! The check reads every `.rs` file under `host/src` and finds, textually,
//! the crate files each one refers to (`crate::…`, `super::…`, `self::…`,
//! `use child::…` in a module that declares `mod child;`, and, in the
//! binary, `cairn_host::…` as the library as a whole). Comments, string literals
//! and `#[cfg(test)] mod … { … }` blocks are ignored; a module declaring or
//! re-exporting its children is containment, not dependency.

/// The layers, from top to bottom, each with the module prefixes in it (a
/// prefix `store` matches `store` and `store/*`). A file may import files of
/// its own layer and of lower ones, never of a higher one. This mirrors the
/// diagram in the library's top-level docs (host/src/lib.rs): change both
/// together.
const LAYERS: &[(&str, &[&str])] = &[
    ("cli", &["main", "cli"]),
    (
        "host",
        &["host", "args", "manifest", "cache", "gc", "worker"],
    ),
    ("call path", &["call_path"]),
    ("engine, tiers, explain", &["engine", "tier", "explain"]),
    ("stores", &["store", "remote"]),
    (
        "data",
        &[
            "bind",
            "provided",
            "task",
            "component",
            "runs",
            "graph",
            "report",
            "sandbox",
            "key",
            "entry",
            "codec",
            "value",
            "bytes",
            "types",
            "digest",
            "error",
            "clock",
            "units",
            "testing",
            "wit_deps",
        ],
    ),
];

/// The binary's modules (`main.rs` and `cli/`); everything else is the
/// library, which the binary sees as one pseudo-module, [`LIB`].
const BINARY: &[&str] = &["main", "cli"];

/// The names the binary uses for the library crate.
const LIBRARY_NAMES: &[&str] = &["cairn", "cairn_host"];

/// The pseudo-module standing for the whole library, as the binary sees it.
const LIB: &str = "lib";

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

#[test]
fn no_import_cycles() {
    let graph = Graph::read(&src_dir());
    let problems = graph.cycles();
    assert!(
        problems.is_empty(),
        "\n{} import cycle(s) between files of host/src (break each by moving the \
         shared item down a layer, or by passing it in):\n\n{}\n",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn modules_only_import_lower_layers() {
    let graph = Graph::read(&src_dir());
    let problems = graph.layer_violations();
    assert!(
        problems.is_empty(),
        "\n{} layering violation(s) in host/src (LAYERS is at the top of \
         tests/all/layers.rs):\n\n{}\n",
        problems.len(),
        problems.join("\n")
    );
}

/// `host/src`.
fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Where a file refers to another: its line and the path as written.
#[derive(Clone, Debug)]
pub(crate) struct Evidence {
    line: usize,
    path: String,
}

/// Files (by module path: `engine`, `store/catalog`, `main`, `cli/run`) and
/// the crate files each refers to.
pub(crate) struct Graph {
    /// Module path → file (relative to `host/src`).
    files: BTreeMap<String, String>,
    /// From → to → the first reference.
    edges: BTreeMap<String, BTreeMap<String, Evidence>>,
}

/// The modules of both crates and the library root's re-exports, which is
/// what a path needs to be resolved to a file.
#[derive(Default)]
struct Modules {
    names: BTreeSet<String>,
    /// Name re-exported by `lib.rs` → the module it comes from.
    root_exports: BTreeMap<String, String>,
}

impl Modules {
    fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Modules {
        Modules {
            names: names.into_iter().map(str::to_string).collect(),
            root_exports: BTreeMap::new(),
        }
    }

    /// The file named by `base` followed by the longest prefix of `rest`
    /// that is a module of the same crate.
    fn resolve(&self, binary: bool, base: &[String], rest: &[String]) -> Option<String> {
        for k in (0..=rest.len()).rev() {
            let path: Vec<&str> = base.iter().chain(&rest[..k]).map(String::as_str).collect();
            if path.is_empty() {
                // The crate root: `main.rs`, or `lib.rs`, which only
                // re-exports (so see where the name comes from).
                return if binary {
                    Some("main".to_string())
                } else {
                    rest.first()
                        .and_then(|name| self.root_exports.get(name))
                        .cloned()
                };
            }
            let name = path.join("/");
            if self.names.contains(&name) && is_binary(&name) == binary {
                return Some(name);
            }
        }
        None
    }
}

fn is_binary(module: &str) -> bool {
    BINARY.iter().any(|p| matches_prefix(module, p))
}

fn matches_prefix(module: &str, prefix: &str) -> bool {
    module == prefix
        || module
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl Graph {
    /// Reads every `.rs` file under `src`.
    pub(crate) fn read(src: &Path) -> Graph {
        let mut sources = BTreeMap::new();
        let mut dirs = vec![src.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let rel = path.strip_prefix(src).unwrap();
                    let rel = rel.to_str().unwrap().replace('\\', "/");
                    let text = std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                    sources.insert(rel, text);
                }
            }
        }
        Graph::from_sources(&sources)
    }

    /// Builds the graph from file paths (relative to `host/src`) and texts.
    pub(crate) fn from_sources(sources: &BTreeMap<String, String>) -> Graph {
        let mut files = BTreeMap::new();
        for rel in sources.keys() {
            if rel != "lib.rs" {
                files.insert(module_name(rel), rel.clone());
            }
        }
        let mut modules = Modules::new(files.keys().map(String::as_str));
        if let Some(lib) = sources.get("lib.rs") {
            modules.root_exports = root_exports(&scan(lib), &modules);
        }
        let mut edges = BTreeMap::new();
        for (module, rel) in &files {
            let mut out = BTreeMap::new();
            if module != "main" {
                for (to, evidence) in file_edges(module, &sources[rel], &modules) {
                    out.entry(to).or_insert(evidence);
                }
            }
            edges.insert(module.clone(), out);
        }
        Graph { files, edges }
    }

    fn file(&self, module: &str) -> String {
        match self.files.get(module) {
            Some(rel) => format!("host/src/{rel}"),
            None => format!("the library ({module})"),
        }
    }

    fn cite(&self, from: &str, to: &str) -> String {
        let e = &self.edges[from][to];
        format!("{}:{} uses `{}`", self.file(from), e.line, e.path)
    }

    /// One message per strongly connected component of more than one file.
    pub(crate) fn cycles(&self) -> Vec<String> {
        let mut out = Vec::new();
        for scc in self.components() {
            if scc.len() < 2 {
                continue;
            }
            let members: BTreeSet<&str> = scc.iter().map(String::as_str).collect();
            let mut text = format!("import cycle among {} files: {}", scc.len(), scc.join(", "));
            // Shortest cycles through each member, until all are shown.
            let mut shown: BTreeSet<String> = BTreeSet::new();
            for start in &scc {
                if shown.contains(start) {
                    continue;
                }
                let cycle = self.shortest_cycle(start, &members);
                text.push_str(&format!("\n  {}", cycle.join(" → ")));
                for pair in cycle.windows(2) {
                    shown.insert(pair[0].clone());
                    text.push_str(&format!("\n      {}", self.cite(&pair[0], &pair[1])));
                }
            }
            out.push(text);
        }
        out
    }

    /// Tarjan's strongly connected components, each sorted.
    fn components(&self) -> Vec<Vec<String>> {
        struct State<'a> {
            graph: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            out: Vec<Vec<String>>,
        }
        fn visit<'a>(s: &mut State<'a>, v: &'a str) {
            let i = s.index.len();
            s.index.insert(v, i);
            s.low.insert(v, i);
            s.stack.push(v);
            s.on_stack.insert(v);
            for w in s.graph.edges.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
            if s.low[v] == s.index[v] {
                let mut scc = Vec::new();
                loop {
                    let w = s.stack.pop().unwrap();
                    s.on_stack.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                scc.sort();
                s.out.push(scc);
            }
        }
        let mut s = State {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            out: Vec::new(),
        };
        for v in self.edges.keys() {
            if !s.index.contains_key(v.as_str()) {
                visit(&mut s, v);
            }
        }
        s.out.sort();
        s.out
    }

    /// `start → … → start`, by breadth-first search inside `within`.
    fn shortest_cycle(&self, start: &str, within: &BTreeSet<&str>) -> Vec<String> {
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(v) = queue.pop_front() {
            for w in self.edges[v].keys() {
                let w = w.as_str();
                if !within.contains(w) {
                    continue;
                }
                if w == start {
                    let mut path = vec![start.to_string()];
                    let mut at = v;
                    while at != start {
                        path.push(at.to_string());
                        at = parent[at];
                    }
                    path.push(start.to_string());
                    path.reverse();
                    return path;
                }
                if !parent.contains_key(w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        unreachable!("{start} is in a cycle")
    }

    /// Files in no layer, and edges to a higher layer.
    pub(crate) fn layer_violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for module in self.files.keys() {
            if layer_of(module).is_none() {
                out.push(format!(
                    "{} ({module}) is in no layer: add it to LAYERS",
                    self.file(module)
                ));
            }
        }
        for (from, tos) in &self.edges {
            let Some(i) = layer_of(from) else { continue };
            for to in tos.keys() {
                if to == LIB {
                    continue; // The binary may use anything of the library.
                }
                let Some(j) = layer_of(to) else { continue };
                if j < i {
                    out.push(format!(
                        "{} [{}] imports {} [{}], a higher layer: line {}: `{}`",
                        self.file(from),
                        LAYERS[i].0,
                        self.file(to),
                        LAYERS[j].0,
                        tos[to].line,
                        tos[to].path,
                    ));
                }
            }
        }
        out
    }
}

/// The index in [`LAYERS`] of the layer holding `module`.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, prefixes)| prefixes.iter().any(|p| matches_prefix(module, p)))
}

/// `engine.rs` → `engine`, `store/mod.rs` → `store`, `cli/run.rs` → `cli/run`.
fn module_name(rel: &str) -> String {
    let stem = rel.strip_suffix(".rs").unwrap_or(rel);
    stem.strip_suffix("/mod").unwrap_or(stem).to_string()
}

/// What `lib.rs` re-exports: name → the module it comes from.
fn root_exports(scan: &Scan, modules: &Modules) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in &scan.refs {
        if r.reexport && r.inline_depth == 0 {
            let segs = match r.segs.first().map(String::as_str) {
                Some("crate" | "self") => &r.segs[1..],
                _ => &r.segs[..],
            };
            let Some(name) = r.alias.as_ref().or(segs.last()) else {
                continue;
            };
            if let Some(module) = modules.resolve(false, &[], &segs[..segs.len() - 1]) {
                out.insert(name.clone(), module);
            }
        }
    }
    out
}

/// The crate files that `module`'s source refers to.
fn file_edges(module: &str, source: &str, modules: &Modules) -> Vec<(String, Evidence)> {
    let binary = is_binary(module);
    let here: Vec<String> = if module == "main" {
        Vec::new()
    } else {
        module.split('/').map(str::to_string).collect()
    };
    let scan = scan(source);
    let mut out = Vec::new();
    for r in &scan.refs {
        let first = r.segs[0].as_str();
        let target = match first {
            "crate" => modules.resolve(binary, &[], &r.segs[1..]),
            "super" => {
                let supers = r.segs.iter().take_while(|s| *s == "super").count();
                // Within an inline `mod x { … }`, the first `super`s stay in
                // this file.
                match supers.checked_sub(r.inline_depth) {
                    None | Some(0) => None,
                    Some(up) if up <= here.len() => {
                        modules.resolve(binary, &here[..here.len() - up], &r.segs[supers..])
                    }
                    Some(_) => None,
                }
            }
            "self" if r.inline_depth == 0 => modules.resolve(binary, &here, &r.segs[1..]),
            _ if binary && LIBRARY_NAMES.contains(&first) => Some(LIB.to_string()),
            _ if r.in_use && r.inline_depth == 0 && scan.children.contains(first) => {
                modules.resolve(binary, &here, &r.segs)
            }
            _ => None,
        };
        // Declaring or re-exporting a child module is containment.
        let child = match first {
            "self" => r.segs.get(1).is_some_and(|s| scan.children.contains(s)),
            _ => scan.children.contains(first),
        };
        if r.reexport && child {
            continue;
        }
        if let Some(to) = target {
            if to != module {
                let evidence = Evidence {
                    line: r.line,
                    path: r.segs.join("::"),
                };
                out.push((to, evidence));
            }
        }
    }
    out
}

/// A path found in a file.
#[derive(Debug)]
struct Ref {
    line: usize,
    /// `crate`, `a`, `B`; a glob ends in `*`.
    segs: Vec<String>,
    /// `use … as alias`.
    alias: Option<String>,
    /// Inside a `use` (not an expression or type).
    in_use: bool,
    /// Inside a `pub use` or `pub(…) use`.
    reexport: bool,
    /// How many inline `mod x { … }` blocks surround it.
    inline_depth: usize,
}

/// What a file's code refers to and declares.
#[derive(Debug, Default)]
struct Scan {
    refs: Vec<Ref>,
    /// Modules declared `mod x;` (not inline) at the file's top level.
    children: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Finds the paths in `source` that may name crate files.
fn scan(source: &str) -> Scan {
    let code = skip_test_modules(&strip(source));
    let toks = tokenize(&code);
    let mut scan = Scan::default();
    let mut depth = 0usize;
    // The brace depths at which the surrounding inline modules opened.
    let mut inline: Vec<usize> = Vec::new();
    let ident = |i: usize| match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let tok = |i: usize| toks.get(i).map(|(t, _)| t);
    let mut i = 0;
    while i < toks.len() {
        let (t, line) = &toks[i];
        match t {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let Some(name) = ident(i + 1) {
                    match tok(i + 2) {
                        Some(Tok::Punct('{')) => {
                            inline.push(depth);
                            depth += 1;
                            i += 3;
                            continue;
                        }
                        Some(Tok::Punct(';')) if inline.is_empty() && depth == 0 => {
                            scan.children.insert(name.to_string());
                        }
                        _ => {}
                    }
                }
            }
            Tok::Ident(kw) if kw == "use" && tok(i + 1) != Some(&Tok::Path) => {
                let reexport = i > 0
                    && match &toks[i - 1].0 {
                        Tok::Ident(p) => p == "pub",
                        Tok::Punct(')') => {
                            // `pub(crate) use`, `pub(in path) use`
                            let open = toks[..i - 1]
                                .iter()
                                .rposition(|(t, _)| *t == Tok::Punct('('));
                            open.is_some_and(|o| o > 0 && ident(o - 1) == Some("pub"))
                        }
                        _ => false,
                    };
                let mut j = i + 1;
                if tok(j) == Some(&Tok::Path) {
                    j += 1; // `use ::extern_crate`
                }
                let mut trees = Vec::new();
                use_tree(&toks, &mut j, Vec::new(), &mut trees);
                for (segs, alias) in trees {
                    if !segs.is_empty() {
                        scan.refs.push(Ref {
                            line: *line,
                            segs,
                            alias,
                            in_use: true,
                            reexport,
                            inline_depth: inline.len(),
                        });
                    }
                }
                // Skip to the end of the statement.
                while j < toks.len() && toks[j].0 != Tok::Punct(';') {
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            Tok::Ident(first)
                if matches!(
                    first.as_str(),
                    "crate" | "$crate" | "super" | "self" | "cairn" | "cairn_host"
                ) && tok(i + 1) == Some(&Tok::Path)
                    && (i == 0 || toks[i - 1].0 != Tok::Path) =>
            {
                let mut segs = vec![first.trim_start_matches('$').to_string()];
                let mut j = i + 1;
                while tok(j) == Some(&Tok::Path) {
                    match ident(j + 1) {
                        Some(s) => segs.push(s.to_string()),
                        None => break,
                    }
                    j += 2;
                }
                scan.refs.push(Ref {
                    line: *line,
                    segs,
                    alias: None,
                    in_use: false,
                    reexport: false,
                    inline_depth: inline.len(),
                });
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    scan
}

/// Expands the use tree at `toks[*i]` into full paths (with any alias).
fn use_tree(
    toks: &[(Tok, usize)],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut segs = prefix;
    loop {
        match toks.get(*i).map(|(t, _)| t) {
            Some(Tok::Ident(s)) if s != "as" => {
                // `a::{self, B}`: `self` is `a` itself.
                if s != "self" || segs.is_empty() {
                    segs.push(s.trim_start_matches('$').to_string());
                }
                *i += 1;
            }
            Some(Tok::Punct('*')) => {
                segs.push("*".to_string());
                *i += 1;
                break;
            }
            Some(Tok::Punct('{')) => {
                *i += 1;
                loop {
                    match toks.get(*i).map(|(t, _)| t) {
                        None => return,
                        Some(Tok::Punct('}')) => {
                            *i += 1;
                            return;
                        }
                        Some(Tok::Punct(',')) => *i += 1,
                        Some(_) => {
                            let before = *i;
                            use_tree(toks, i, segs.clone(), out);
                            if *i == before {
                                *i += 1; // Something unexpected: move on.
                            }
                        }
                    }
                }
            }
            _ => break,
        }
        if toks.get(*i).map(|(t, _)| t) == Some(&Tok::Path) {
            *i += 1;
        } else {
            break;
        }
    }
    let mut alias = None;
    if let Some((Tok::Ident(s), _)) = toks.get(*i) {
        if s == "as" {
            if let Some((Tok::Ident(a), _)) = toks.get(*i + 1) {
                alias = Some(a.clone());
            }
            *i += 2;
        }
    }
    out.push((segs, alias));
}

/// Identifiers (`$crate` is one), `::` and single punctuation, with lines.
fn tokenize(code: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut toks = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if is_ident_char(c)
            || (c == '$' && chars.get(i + 1).is_some_and(|&c| is_ident_char(c)))
        {
            let start = i;
            i += 1;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            toks.push((Tok::Ident(word.trim_start_matches("r#").to_string()), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            toks.push((Tok::Path, line));
            i += 2;
        } else {
            toks.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    toks
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `source` with comments (doc comments too), string literals and character
/// literals blanked out; line breaks stay, so lines keep their numbers.
fn strip(source: &str) -> String {
    let s: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    // Blanks `s[from..to]`, keeping line breaks.
    let blank = |out: &mut String, from: usize, to: usize| {
        for &c in &s[from..to.min(s.len())] {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
    };
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let end = s[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(s.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if c == '/' && next == Some('*') {
            let (mut j, mut nest) = (i + 2, 1);
            while j < s.len() && nest > 0 {
                if s[j] == '/' && s.get(j + 1) == Some(&'*') {
                    nest += 1;
                    j += 2;
                } else if s[j] == '*' && s.get(j + 1) == Some(&'/') {
                    nest -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c == '"' {
            let end = quoted_end(&s, i + 1, '"');
            blank(&mut out, i, end);
            i = end;
        } else if c == '\'' {
            // A character literal (`'a'`, `'\n'`, `'"'`), or a lifetime.
            let end = if next == Some('\\') {
                quoted_end(&s, i + 1, '\'')
            } else if s.get(i + 2) == Some(&'\'') {
                i + 3
            } else {
                i + 1
            };
            if end == i + 1 {
                out.push('\'');
            } else {
                blank(&mut out, i, end);
            }
            i = end;
        } else if is_ident_char(c) && (i == 0 || !is_ident_char(s[i - 1])) {
            let mut j = i;
            while j < s.len() && is_ident_char(s[j]) {
                j += 1;
            }
            let word: String = s[i..j].iter().collect();
            let at = s.get(j).copied();
            let raw = matches!(word.as_str(), "r" | "br" | "cr");
            if raw && (at == Some('"') || at == Some('#')) {
                let hashes = s[j..].iter().take_while(|&&c| c == '#').count();
                if s.get(j + hashes) == Some(&'"') {
                    // A raw string: ends at `"` and as many `#`.
                    let mut k = j + hashes + 1;
                    while k < s.len() {
                        if s[k] == '"'
                            && s[k + 1..]
                                .iter()
                                .take(hashes)
                                .filter(|&&c| c == '#')
                                .count()
                                == hashes
                        {
                            k += 1 + hashes;
                            break;
                        }
                        k += 1;
                    }
                    blank(&mut out, i, k);
                    i = k;
                    continue;
                }
            }
            if matches!(word.as_str(), "b" | "c") && at == Some('"') {
                let end = quoted_end(&s, j + 1, '"');
                blank(&mut out, i, end);
                i = end;
                continue;
            }
            if word == "b" && at == Some('\'') {
                let end = quoted_end(&s, j + 1, '\'');
                blank(&mut out, i, end);
                i = end;
                continue;
            }
            out.push_str(&word);
            i = j;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The index just past the `close` that ends a literal whose body starts at
/// `from`, minding backslash escapes.
fn quoted_end(s: &[char], from: usize, close: char) -> usize {
    let mut j = from;
    while j < s.len() {
        if s[j] == '\\' {
            j += 2;
        } else if s[j] == close {
            return j + 1;
        } else {
            j += 1;
        }
    }
    s.len()
}

/// `code` (already stripped) with each `#[cfg(test)] mod x { … }` blanked.
fn skip_test_modules(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    let text: String = chars.iter().collect();
    let mut offsets = Vec::new(); // char offset of each line's start
    let mut at = 0;
    for line in text.split('\n') {
        offsets.push(at);
        at += line.chars().count() + 1;
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut n = 0;
    while n < lines.len() {
        if lines[n].trim() != "#[cfg(test)]" {
            n += 1;
            continue;
        }
        // Past further attributes and blank lines, is it `mod x {`?
        let mut m = n + 1;
        while m < lines.len() && (lines[m].trim().is_empty() || lines[m].trim().starts_with("#[")) {
            m += 1;
        }
        let Some(decl) = lines.get(m) else { break };
        let words: Vec<&str> = decl
            .split(|c: char| !is_ident_char(c) && c != '{' && c != ';')
            .filter(|w| !w.is_empty())
            .collect();
        let is_mod = matches!(
            words.as_slice(),
            ["mod", ..] | ["pub", "mod", ..] | ["pub", _, "mod", ..]
        );
        // An inline module's `{` comes before any `;` (`mod testing;` is a
        // file, and stays).
        let brace = chars[offsets[m]..]
            .iter()
            .position(|&c| c == '{' || c == ';')
            .map(|p| offsets[m] + p)
            .filter(|&p| chars[p] == '{');
        let (true, Some(open)) = (is_mod, brace) else {
            n += 1;
            continue;
        };
        let mut depth = 0;
        let mut end = chars.len();
        for (k, &c) in chars.iter().enumerate().skip(open) {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        for c in &mut chars[offsets[n]..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        n = chars[..end].iter().filter(|&&c| c == '\n').count() + 1;
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod checker {
    //! The checker's own tests, on inline sources.

    use super::*;

    fn sources(files: &[(&str, &str)]) -> Graph {
        let map = files
            .iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect();
        Graph::from_sources(&map)
    }

    fn targets(graph: &Graph, from: &str) -> Vec<String> {
        graph.edges[from].keys().cloned().collect()
    }

    const EMPTY: &str = "";

    #[test]
    fn grouped_and_multiline_imports() {
        let g = sources(&[
            ("a.rs", EMPTY),
            ("b.rs", EMPTY),
            ("c/mod.rs", EMPTY),
            ("c/d.rs", EMPTY),
            ("e.rs", EMPTY),
            (
                "x.rs",
                "use crate::{a::X, c::{d::Y, Z},\n    b::{self as bee}};\nuse std::io;\n",
            ),
        ]);
        assert_eq!(targets(&g, "x"), ["a", "b", "c", "c/d"]);
        assert_eq!(g.edges["x"]["c/d"].line, 1);
        assert_eq!(g.edges["x"]["b"].line, 1);
    }

    #[test]
    fn paths_in_code_resolve_to_the_longest_module() {
        let g = sources(&[
            ("a/mod.rs", EMPTY),
            ("a/b.rs", EMPTY),
            ("e.rs", EMPTY),
            (
                "x.rs",
                "fn f() -> crate::a::Thing {\n    crate::a::b::make::<u8>(crate::e::E)\n}\n",
            ),
        ]);
        assert_eq!(targets(&g, "x"), ["a", "a/b", "e"]);
        assert_eq!(g.edges["x"]["a/b"].line, 2);
        assert_eq!(g.edges["x"]["a/b"].path, "crate::a::b::make");
    }

    #[test]
    fn super_is_the_parent_module() {
        let g = sources(&[
            ("store/mod.rs", "mod catalog;\nmod record;\n"),
            ("store/record.rs", EMPTY),
            (
                "store/catalog.rs",
                "use super::Store;\nuse super::record::{self, X};\n",
            ),
            ("top.rs", "fn f() { super::digest::hash() }"),
            ("digest.rs", EMPTY),
        ]);
        assert_eq!(targets(&g, "store/catalog"), ["store", "store/record"]);
        assert_eq!(targets(&g, "top"), ["digest"]);
    }

    #[test]
    fn a_module_declaring_or_reexporting_children_does_not_depend_on_them() {
        let g = sources(&[
            (
                "store/mod.rs",
                "mod a;\npub mod b;\nmod c;\nmod d;\npub(crate) use a::A;\npub use b::{B, C};\n\
                 use c::Queue;\nfn f() { self::d::go() }\n",
            ),
            ("store/a.rs", EMPTY),
            ("store/b.rs", EMPTY),
            ("store/c.rs", EMPTY),
            ("store/d.rs", EMPTY),
        ]);
        assert_eq!(targets(&g, "store"), ["store/c", "store/d"]);
    }

    #[test]
    fn lib_reexports_and_the_binary() {
        let g = sources(&[
            (
                "lib.rs",
                "mod error;\nmod task;\npub use error::{Error, Result as R};\n",
            ),
            ("main.rs", "mod cli;\nfn main() { cli::main() }"),
            ("error.rs", EMPTY),
            ("task.rs", "fn f() -> crate::R<()> { Ok(()) }"),
            (
                "cli/mod.rs",
                "mod run;\nfn f() -> cairn_host::Result<()> { crate::cli::run::go() }",
            ),
            (
                "cli/run.rs",
                "use cairn_host::Host;\npub fn go() { super::print() }",
            ),
        ]);
        assert_eq!(targets(&g, "task"), ["error"]);
        assert_eq!(targets(&g, "cli"), ["cli/run", "lib"]);
        assert_eq!(targets(&g, "cli/run"), ["cli", "lib"]);
        assert!(targets(&g, "main").is_empty());
        assert!(!g.files.contains_key("lib"));
    }

    #[test]
    fn test_modules_comments_and_strings_are_ignored() {
        let source = r##"
//! Uses crate::a::Doc.
/// See [`crate::b::Link`].
use crate::c::Real; // crate::d::Comment
/* crate::e::Block /* nested crate::e::X */ */
const S: &str = "crate::f::String \" crate::f::Escaped";
const R: &str = r#"crate::g::Raw " still"#;
const C: char = '"';
const B: u8 = b'{';
fn f<'a>(x: &'a str) -> crate::h::Typed { todo!() }

#[cfg(test)]
mod tests {
    use crate::i::InTests;
    fn g() { if true { crate::i::Deep; } }
}

#[cfg(test)]
#[allow(dead_code)]
mod more_tests {
    use crate::i::InTests;
}

fn after() { crate::j::After }
"##;
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        let mut files: Vec<(&str, &str)> = names
            .iter()
            .map(|n| (Box::leak(format!("{n}.rs").into_boxed_str()) as &str, EMPTY))
            .collect();
        files.push(("x.rs", source));
        let g = sources(&files);
        assert_eq!(targets(&g, "x"), ["c", "h", "j"]);
        assert_eq!(g.edges["x"]["j"].line, 24);
    }

    #[test]
    fn inline_modules_keep_super_in_the_file() {
        let g = sources(&[
            (
                "gc.rs",
                "mod size_text {\n    use super::Config;\n    \
                 fn f() { super::super::digest::x() }\n}\n",
            ),
            ("digest.rs", EMPTY),
            ("store/mod.rs", "mod inner { use super::super::digest::D; }"),
        ]);
        assert_eq!(targets(&g, "gc"), ["digest"]);
        assert_eq!(targets(&g, "store"), ["digest"]);
    }

    #[test]
    fn cycles_and_layers_are_reported() {
        let g = sources(&[
            ("store/mod.rs", "mod record;\nuse crate::engine::E;\n"),
            ("store/record.rs", "use super::Store;"),
            ("engine.rs", "use crate::store::Store;"),
            ("flow.rs", "use crate::digest::D;"),
            ("digest.rs", EMPTY),
        ]);
        let cycles = g.cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(
            cycles[0].contains("engine → store → engine"),
            "{}",
            cycles[0]
        );
        assert!(
            cycles[0].contains("host/src/store/mod.rs:2 uses `crate::engine::E`"),
            "{}",
            cycles[0]
        );
        let layers = g.layer_violations();
        assert_eq!(layers.len(), 2, "{layers:?}");
        assert!(layers[0].contains("host/src/flow.rs (flow) is in no layer"));
        assert_eq!(
            layers[1],
            "host/src/store/mod.rs [stores] imports host/src/engine.rs \
             [engine, tiers, explain], a higher layer: line 2: `crate::engine::E`",
        );
    }
}
