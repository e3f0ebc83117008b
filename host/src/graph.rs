//! Drawing a recorded run's call tree: Mermaid, Graphviz DOT, or a
//! self-contained HTML page.
//!
//! All three renderers share the same reading of a [`RunRecord`]: one node
//! per call, labelled with the component's file stem (`load` for
//! `examples/target/wasm32-wasip2/release/load.wasm`), the export, the cache
//! status and a time (the wall time of an executed call, the time a hit
//! saved), coloured by status, with the full component name and key kept for
//! hover text. A call of a failed run that executed but never finished
//! (elapsed 0) is marked as failed.
//!
//! Layer: bottom (data); imports only other bottom-layer modules.

use std::fmt::Write as _;

use crate::report::CacheStatus;
use crate::runs::{RunCall, RunRecord};
use crate::units::micros;

/// Every status, in legend order.
const STATUSES: [CacheStatus; 4] = [
    CacheStatus::Hit,
    CacheStatus::Miss,
    CacheStatus::Expired,
    CacheStatus::Uncacheable,
];

/// Fill colour of a status: hits green, misses orange, expired yellow,
/// uncacheable grey.
fn fill(status: CacheStatus) -> &'static str {
    match status {
        CacheStatus::Hit => "#c8e6c9",
        CacheStatus::Miss => "#ffe0b2",
        CacheStatus::Expired => "#fff59d",
        CacheStatus::Uncacheable => "#e0e0e0",
    }
}

/// Border colour of a status, a darker shade of its fill.
fn stroke(status: CacheStatus) -> &'static str {
    match status {
        CacheStatus::Hit => "#2e7d32",
        CacheStatus::Miss => "#ef6c00",
        CacheStatus::Expired => "#f9a825",
        CacheStatus::Uncacheable => "#757575",
    }
}

/// Border colour of a failed call.
const FAILED_STROKE: &str = "#c62828";

/// The short name people see for a component: its file stem, the last
/// path segment without `.wasm` (the whole name if that leaves nothing).
pub fn stem(component: &str) -> &str {
    let base = component.rsplit(['/', '\\']).next().unwrap_or(component);
    match base.strip_suffix(".wasm").unwrap_or(base) {
        "" => component,
        stem => stem,
    }
}

/// Whether a call of the run failed: the run has an error and the call
/// executed but never finished.
fn failed(run: &RunRecord, call: &RunCall) -> bool {
    run.error.is_some() && call.cache != CacheStatus::Hit && call.elapsed_us == 0
}

/// The caller of call `index`, if the record names a valid one. A parent must
/// have started before its child, so a bad index makes the call a root instead
/// of a dangling edge or a cycle.
fn parent(run: &RunRecord, index: usize) -> Option<usize> {
    run.calls[index].parent.filter(|&p| p < index)
}

/// The calls each call made, in start order, and the roots.
fn children(run: &RunRecord) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut children = vec![Vec::new(); run.calls.len()];
    let mut roots = Vec::new();
    for index in 0..run.calls.len() {
        match parent(run, index) {
            Some(p) => children[p].push(index),
            None => roots.push(index),
        }
    }
    (children, roots)
}

/// The status and time of a call, for people: `miss 2.24 s`,
/// `hit saved 1.5 s`, `miss failed`.
fn status_line(run: &RunRecord, call: &RunCall) -> String {
    let status = call.cache.as_str();
    if failed(run, call) {
        format!("{status} failed")
    } else if call.cache == CacheStatus::Hit {
        format!("{status} saved {}", micros(call.run_us))
    } else {
        format!("{status} {}", micros(call.elapsed_us))
    }
}

/// The first line of a call's label: `load · load#load`.
fn name_line(call: &RunCall) -> String {
    format!("{} · {}", stem(&call.component), call.export)
}

/// Hover text of a call: its full key and component name.
fn hover(call: &RunCall) -> String {
    format!("key {}\ncomponent {}", call.key.to_hex(), call.component)
}

/// A time in milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn timestamp(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// Text made safe inside a double-quoted Mermaid label: quotes, angle
/// brackets, ampersands, `#` and backticks become entity codes and line
/// breaks become spaces.
fn mermaid_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text made safe inside a double-quoted DOT string: `"` and `\` escaped,
/// line breaks as `\n`.
fn dot_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Text made safe in HTML text and attribute values.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The run's call tree as a Mermaid `flowchart TD`.
///
/// Nodes are `c0`, `c1`, … in start order, labelled
/// `load · load#load<br/>miss 2.24 s` (hits show the time they saved), with
/// an edge from each caller to the calls it made and a `class` per status
/// (`classDef hit`, `miss`, `expired`, `uncacheable`; failed calls also get
/// `failed`). A `%%` comment line per call keeps its full component name and
/// key, which Mermaid labels leave out.
pub fn mermaid(run: &RunRecord) -> String {
    let mut out = String::from("flowchart TD\n");
    for (i, call) in run.calls.iter().enumerate() {
        let one_line = |text: &str| text.replace(['\n', '\r'], " ");
        let _ = writeln!(
            out,
            "    %% c{i} {} {} key {}",
            one_line(&call.component),
            one_line(&call.export),
            call.key.to_hex()
        );
        let _ = writeln!(
            out,
            "    c{i}[\"{}<br/>{}\"]",
            mermaid_escape(&name_line(call)),
            mermaid_escape(&status_line(run, call))
        );
    }
    for i in 0..run.calls.len() {
        if let Some(p) = parent(run, i) {
            let _ = writeln!(out, "    c{p} --> c{i}");
        }
    }
    for status in STATUSES {
        let _ = writeln!(
            out,
            "    classDef {} fill:{},stroke:{},color:#000",
            status.as_str(),
            fill(status),
            stroke(status)
        );
    }
    let any_failed = run.calls.iter().any(|c| failed(run, c));
    if any_failed {
        let _ = writeln!(
            out,
            "    classDef failed stroke:{FAILED_STROKE},stroke-width:3px"
        );
    }
    for (i, call) in run.calls.iter().enumerate() {
        let _ = writeln!(out, "    class c{i} {}", call.cache.as_str());
        if failed(run, call) {
            let _ = writeln!(out, "    class c{i} failed");
        }
    }
    out
}

/// The run's call tree as a Graphviz `digraph run_<id>`.
///
/// One rounded, filled box per call (`c0`, `c1`, …) labelled with the
/// component's stem, the export, the status and the time, filled by status,
/// with the full key and component name as its `tooltip`; an edge from each
/// caller to the calls it made. Failed calls get a red border.
pub fn dot(run: &RunRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph run_{} {{", run.id);
    let mut title = format!(
        "run {} · {} · {}",
        run.id,
        timestamp(run.started_ms),
        micros(run.elapsed_us)
    );
    if let Some(error) = &run.error {
        let _ = write!(title, "\nfailed: {error}");
    }
    let _ = writeln!(out, "    label=\"{}\";", dot_escape(&title));
    out.push_str("    labelloc=t;\n");
    out.push_str("    node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n");
    for (i, call) in run.calls.iter().enumerate() {
        let label = format!("{}\n{}", name_line(call), status_line(run, call));
        let border = if failed(run, call) {
            format!("color=\"{FAILED_STROKE}\", penwidth=3")
        } else {
            format!("color=\"{}\"", stroke(call.cache))
        };
        let _ = writeln!(
            out,
            "    c{i} [label=\"{}\", fillcolor=\"{}\", {border}, tooltip=\"{}\"];",
            dot_escape(&label),
            fill(call.cache),
            dot_escape(&hover(call))
        );
    }
    for i in 0..run.calls.len() {
        if let Some(p) = parent(run, i) {
            let _ = writeln!(out, "    c{p} -> c{i};");
        }
    }
    out.push_str("}\n");
    out
}

/// The run as a complete, self-contained HTML5 page.
///
/// The page has inline CSS only (no scripts, no external resources, so it
/// works from `file://`): the run's id, start time (UTC), total time, counts
/// of calls, hits and executed calls, the time hits saved, the error if the
/// run failed, a legend, and the call tree as nested boxes coloured by
/// status. Each box shows the component's stem, the export, the status, the
/// wall time and the execution time (the time saved, for a hit); hovering
/// shows the full key and component name, and the key is also in the box's
/// `data-key`. Every call appears exactly once.
pub fn html(run: &RunRecord) -> String {
    let mut out = String::new();
    let title = html_escape(&format!("cairn run {}", run.id));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{}</style>\n</head>\n<body>\n<h1>{title}</h1>\n",
        css()
    );

    out.push_str("<dl class=\"summary\">\n");
    let saved = micros(run.saved_us());
    let facts = [
        ("started", timestamp(run.started_ms)),
        ("elapsed", micros(run.elapsed_us)),
        ("calls", run.calls.len().to_string()),
        ("hits", run.hits().to_string()),
        ("executed", run.executed().to_string()),
        ("saved", saved),
    ];
    for (name, value) in facts {
        let _ = writeln!(
            out,
            "<div><dt>{}</dt><dd>{}</dd></div>",
            html_escape(name),
            html_escape(&value)
        );
    }
    out.push_str("</dl>\n");
    if let Some(error) = &run.error {
        let _ = writeln!(
            out,
            "<p class=\"error\"><strong>failed:</strong> {}</p>",
            html_escape(error)
        );
    }

    out.push_str("<p class=\"legend\">");
    for status in STATUSES {
        let name = status.as_str();
        let _ = write!(out, "<span class=\"call {name}\">{name}</span> ");
    }
    out.push_str("<span class=\"call failed\">failed</span></p>\n");

    if run.calls.is_empty() {
        out.push_str("<p>The run made no calls.</p>\n");
    } else {
        html_tree(run, &mut out);
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The page's style sheet, with one rule per status.
fn css() -> String {
    let mut css = String::from(
        "body { font-family: system-ui, sans-serif; margin: 2em; color: #212121; }\n\
         h1 { font-size: 1.5em; }\n\
         dl.summary { display: flex; flex-wrap: wrap; gap: 0.5em 2em; }\n\
         dl.summary dt { font-size: 0.8em; color: #616161; }\n\
         dl.summary dd { margin: 0; font-weight: bold; }\n\
         .error { border-left: 4px solid #c62828; background: #ffebee; padding: 0.5em 1em; \
         white-space: pre-wrap; }\n\
         ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 1.5em; }\n\
         ul.tree { padding-left: 0; }\n\
         ul.tree ul { border-left: 1px dashed #bdbdbd; margin-left: 0.75em; }\n\
         ul.tree li { margin: 0.4em 0; }\n\
         .call { display: inline-block; border: 2px solid; border-radius: 6px; \
         padding: 0.3em 0.6em; }\n\
         .legend .call { padding: 0.1em 0.5em; margin-right: 0.3em; }\n\
         .call .name { font-weight: bold; }\n\
         .call .export, .call code { font-family: ui-monospace, monospace; }\n\
         .call .times { font-size: 0.85em; color: #424242; }\n",
    );
    for status in STATUSES {
        let _ = writeln!(
            css,
            ".call.{} {{ background: {}; border-color: {}; }}",
            status.as_str(),
            fill(status),
            stroke(status)
        );
    }
    let _ = writeln!(
        css,
        ".call.failed {{ border-color: {FAILED_STROKE}; border-style: dashed; }}"
    );
    css
}

/// Appends the call tree as nested lists, without recursion so a deep tree
/// cannot overflow the stack.
fn html_tree(run: &RunRecord, out: &mut String) {
    enum Step {
        Open(usize),
        Close,
    }
    let (children, roots) = children(run);
    out.push_str("<ul class=\"tree\">\n");
    let mut stack: Vec<Step> = roots.iter().rev().map(|&i| Step::Open(i)).collect();
    while let Some(step) = stack.pop() {
        match step {
            Step::Open(i) => {
                out.push_str("<li>");
                html_call(run, &run.calls[i], out);
                if children[i].is_empty() {
                    out.push_str("</li>\n");
                } else {
                    out.push_str("\n<ul>\n");
                    stack.push(Step::Close);
                    stack.extend(children[i].iter().rev().map(|&c| Step::Open(c)));
                }
            }
            Step::Close => out.push_str("</ul>\n</li>\n"),
        }
    }
    out.push_str("</ul>\n");
}

/// Appends one call's box.
fn html_call(run: &RunRecord, call: &RunCall, out: &mut String) {
    let status = call.cache.as_str();
    let failed = failed(run, call);
    let class = if failed {
        format!("call {status} failed")
    } else {
        format!("call {status}")
    };
    let times = if failed {
        "failed".to_owned()
    } else if call.cache == CacheStatus::Hit {
        format!(
            "elapsed {} · saved {}",
            micros(call.elapsed_us),
            micros(call.run_us)
        )
    } else {
        format!(
            "elapsed {} · run {}",
            micros(call.elapsed_us),
            micros(call.run_us)
        )
    };
    let _ = write!(
        out,
        "<div class=\"{class}\" title=\"{}\" data-key=\"{}\">\
         <span class=\"name\">{}</span> <span class=\"export\">{}</span> \
         <span class=\"status\">{status}</span> <code>{}</code><br>\
         <span class=\"times\">{}</span></div>",
        html_escape(&hover(call)),
        call.key.to_hex(),
        html_escape(stem(&call.component)),
        html_escape(&call.export),
        call.key.short(),
        html_escape(&times)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn call(
        component: &str,
        export: &str,
        cache: CacheStatus,
        elapsed_us: u64,
        run_us: u64,
        parent: Option<usize>,
    ) -> RunCall {
        RunCall {
            component: component.to_owned(),
            export: export.to_owned(),
            key: Digest::of(format!("{component} {export} {parent:?}").as_bytes()),
            cache,
            start_us: 0,
            elapsed_us,
            run_us,
            parent,
        }
    }

    /// A flow that missed, calling a task that hit and one that missed,
    /// which called an uncacheable one; the missed task's name needs
    /// escaping everywhere.
    fn flow() -> RunRecord {
        RunRecord {
            id: 7,
            started_ms: 1_700_000_000_000,
            elapsed_us: 2_240_000,
            error: None,
            calls: vec![
                call(
                    "examples/target/wasm32-wasip2/release/flow.wasm",
                    "flow#run",
                    CacheStatus::Miss,
                    2_240_000,
                    2_240_000,
                    None,
                ),
                call(
                    "examples/target/wasm32-wasip2/release/load.wasm",
                    "load#load",
                    CacheStatus::Hit,
                    35,
                    1_500_000,
                    Some(0),
                ),
                call(
                    "dir/a\"b<c>.wasm",
                    "x#y",
                    CacheStatus::Miss,
                    500_000,
                    480_000,
                    Some(0),
                ),
                call(
                    "plain",
                    "z",
                    CacheStatus::Uncacheable,
                    1_234,
                    1_200,
                    Some(2),
                ),
            ],
        }
    }

    fn failed_run() -> RunRecord {
        RunRecord {
            id: 8,
            started_ms: 0,
            elapsed_us: 900,
            error: Some("trap: <boom> & 'bust'".to_owned()),
            calls: vec![
                call("flow.wasm", "run", CacheStatus::Miss, 0, 0, None),
                call("load.wasm", "load", CacheStatus::Hit, 20, 7_000, Some(0)),
                call("step.wasm", "step", CacheStatus::Miss, 0, 0, Some(0)),
            ],
        }
    }

    /// Checks that braces balance outside DOT strings and that every string
    /// is closed.
    fn assert_dot_balanced(dot: &str) {
        let (mut depth, mut in_string, mut escaped) = (0i32, false, false);
        for c in dot.chars() {
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_string = true,
                '{' | '[' => depth += 1,
                '}' | ']' => {
                    depth -= 1;
                    assert!(depth >= 0, "closing bracket too many:\n{dot}");
                }
                _ => {}
            }
        }
        assert!(!in_string, "unclosed string:\n{dot}");
        assert_eq!(depth, 0, "unbalanced brackets:\n{dot}");
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(timestamp(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(timestamp(951_782_400_999), "2000-02-29 00:00:00 UTC");
        assert_eq!(timestamp(1_735_689_599_000), "2024-12-31 23:59:59 UTC");
    }

    #[test]
    fn labels_use_the_file_stem() {
        assert_eq!(
            stem("examples/target/wasm32-wasip2/release/load.wasm"),
            "load"
        );
        assert_eq!(stem("C:\\tasks\\load.wasm"), "load");
        assert_eq!(stem("plain"), "plain");
        assert_eq!(stem(".wasm"), ".wasm");
    }

    #[test]
    fn html_shows_every_call_once_escaped() {
        let run = flow();
        let page = html(&run);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.trim_end().ends_with("</html>"));
        for call in &run.calls {
            let key = call.key.to_hex();
            assert_eq!(
                page.matches(&format!("data-key=\"{key}\"")).count(),
                1,
                "{}",
                call.component
            );
            assert!(page.contains(&format!("title=\"key {key}\n")));
        }
        assert!(!page.contains("<c>"));
        assert!(!page.contains("a\"b"));
        assert!(page.contains("a&quot;b&lt;c&gt;"));
        assert!(page.contains("component examples/target/wasm32-wasip2/release/load.wasm"));
        assert!(page.contains("<span class=\"name\">load</span>"));
        assert!(page.contains("2023-11-14 22:13:20 UTC"));
        assert!(page.contains("<dt>saved</dt><dd>1.50 s</dd>"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("http"));
        // The grandchild sits inside its parent's list.
        let parent = page.find("a&quot;b&lt;c&gt;").unwrap();
        let grandchild = page.find("<span class=\"name\">plain</span>").unwrap();
        let hit = page.find("<span class=\"name\">load</span>").unwrap();
        assert!(hit < parent && parent < grandchild);
        assert_eq!(page.matches("<ul").count(), page.matches("</ul>").count());
        assert_eq!(page.matches("<li>").count(), run.calls.len());
        assert_eq!(page.matches("</li>").count(), run.calls.len());
    }

    #[test]
    fn html_shows_a_failed_run() {
        let run = failed_run();
        let page = html(&run);
        assert!(page.contains("trap: &lt;boom&gt; &amp; &#39;bust&#39;"));
        assert!(page.contains("1970-01-01 00:00:00 UTC"));
        assert_eq!(page.matches("class=\"call miss failed\" title=").count(), 2);
        assert_eq!(page.matches("class=\"call hit\" title=").count(), 1);
    }

    #[test]
    fn html_keeps_calls_with_bad_parents() {
        let mut run = flow();
        run.calls[1].parent = Some(99);
        run.calls[2].parent = Some(3);
        let page = html(&run);
        for call in &run.calls {
            let key = call.key.to_hex();
            assert_eq!(page.matches(&format!("data-key=\"{key}\"")).count(), 1);
        }
    }

    #[test]
    fn mermaid_draws_the_tree() {
        let run = flow();
        let chart = mermaid(&run);
        assert!(chart.starts_with("flowchart TD\n"));
        let edges: Vec<&str> = chart
            .lines()
            .map(str::trim)
            .filter(|l| l.contains("-->"))
            .collect();
        assert_eq!(edges, ["c0 --> c1", "c0 --> c2", "c2 --> c3"]);
        for line in [
            "class c0 miss",
            "class c1 hit",
            "class c2 miss",
            "class c3 uncacheable",
        ] {
            assert!(chart.lines().any(|l| l.trim() == line), "{line}:\n{chart}");
        }
        for status in ["hit", "miss", "expired", "uncacheable"] {
            assert!(chart.contains(&format!("classDef {status} fill:#")));
        }
        assert!(chart.contains("c0[\"flow · flow#35;run<br/>miss 2.24 s\"]"));
        assert!(chart.contains("c1[\"load · load#35;load<br/>hit saved 1.50 s\"]"));
        assert!(chart.contains("c2[\"a#quot;b#lt;c#gt; · x#35;y<br/>miss 500.0 ms\"]"));
        // Node lines carry no raw quote inside a label.
        for line in chart.lines().map(str::trim).filter(|l| l.starts_with('c')) {
            if let Some(label) = line.split_once('[') {
                let inner = label.1.trim_end_matches(']');
                assert_eq!(inner.matches('"').count(), 2, "{line}");
            }
        }
        assert!(!chart.contains("classDef failed"));
    }

    #[test]
    fn mermaid_marks_failed_calls() {
        let chart = mermaid(&failed_run());
        assert!(chart.contains("classDef failed"));
        assert!(chart.contains("class c0 failed"));
        assert!(chart.contains("class c2 failed"));
        assert!(!chart.contains("class c1 failed"));
        assert!(chart.contains("miss failed"));
    }

    #[test]
    fn dot_draws_the_tree() {
        let run = flow();
        let graph = dot(&run);
        assert!(graph.starts_with("digraph run_7 {\n"));
        assert!(graph.contains("node [shape=box, style=\"rounded,filled\""));
        assert_dot_balanced(&graph);
        let edges: Vec<&str> = graph
            .lines()
            .map(str::trim)
            .filter(|l| l.contains("->"))
            .collect();
        assert_eq!(edges, ["c0 -> c1;", "c0 -> c2;", "c2 -> c3;"]);
        for call in &run.calls {
            assert!(graph.contains(&format!("tooltip=\"key {}\\n", call.key.to_hex())));
        }
        assert!(graph.contains("label=\"a\\\"b<c> · x#y\\nmiss 500.0 ms\""));
        assert!(graph.contains(&format!("fillcolor=\"{}\"", fill(CacheStatus::Hit))));

        let mut odd = flow();
        odd.calls[3].component = "back\\slash\".wasm".to_owned();
        odd.error = Some("line one\nline \"two\"".to_owned());
        let graph = dot(&odd);
        assert_dot_balanced(&graph);
        assert!(graph.contains("back\\\\slash\\\""));
    }
}
