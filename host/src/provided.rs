//! What the host gives every task to import: WASI 0.2 as wasmtime-wasi links
//! it (no `wasi:http`) and `cairn:task` 0.1; and the one-line error for a
//! component that imports something else of theirs, which no `--with`
//! component can supply.
//!
//! Layer: bottom (data); imports only [`crate::error`].

use crate::error::{Error, ErrorKind};

/// The WASI packages the host links (wasmtime-wasi's `p2` set), at 0.2.x;
/// a task may import any interface of them. `wasi:http` and the proposals
/// beyond WASI 0.2 (`wasi:keyvalue`, `wasi:nn`, …) are not among them.
const WASI: &[&str] = &[
    "wasi:cli",
    "wasi:clocks",
    "wasi:filesystem",
    "wasi:io",
    "wasi:random",
    "wasi:sockets",
];

/// Whether the host itself provides import `name`, e.g.
/// `wasi:io/streams@0.2.12` or `cairn:task/blobs@0.1.0`. A 0.2.x WASI
/// import links to the host's 0.2 implementation whatever its patch
/// version; an unversioned or pre-release one does not link.
pub(crate) fn host_provided(name: &str) -> bool {
    // Byte scans: a flow's load asks this of every import of every task,
    // and names are short.
    let at = |c: u8, s: &str| s.bytes().position(|b| b == c);
    let Some(i) = at(b'@', name) else {
        return false;
    };
    let (path, version) = (&name[..i], &name[i + 1..]);
    let package = at(b'/', path).map_or(path, |j| &path[..j]);
    let minor = if package == "cairn:task" {
        "0.1."
    } else if WASI.contains(&package) {
        "0.2."
    } else {
        return false;
    };
    // A pre-release (`0.2.0-rc-2023-…`) does not link to a release.
    version.starts_with(minor) && at(b'-', version).is_none()
}

/// Whether import `name` can only come from the host (WASI, `cairn:task`),
/// not from a task bound to a flow.
pub(crate) fn host_namespace(name: &str) -> bool {
    name.starts_with("wasi:") || name.starts_with("cairn:task/")
}

/// The error for `task`'s imports `missing` (of the host's namespaces) that
/// the host does not provide: names them and says how to rebuild without
/// them, with the componentize-js option when one is `wasi:http`.
pub(crate) fn unprovided_error(task: &str, missing: &[&str]) -> Error {
    let listed = missing
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = if missing.iter().any(|i| i.starts_with("wasi:http/")) {
        "; a componentize-js build drops wasi:http with `--disable http fetch-event` (guest-sdk/js's cairn-js-build does)"
    } else {
        ""
    };
    Error::new(
        ErrorKind::InvalidComponent,
        format!(
            "{task} imports {listed}, which cairn does not provide (it gives tasks WASI 0.2 without wasi:http, and cairn:task 0.1): rebuild the component without {}{hint}",
            if missing.len() == 1 { "it" } else { "them" }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_0_2_and_cairn_task_are_provided_at_any_patch() {
        for name in [
            "wasi:io/streams@0.2.0",
            "wasi:io/streams@0.2.12",
            "wasi:filesystem/preopens@0.2.6",
            "wasi:sockets/tcp@0.2.3",
            "cairn:task/blobs@0.1.0",
        ] {
            assert!(host_provided(name), "{name}");
        }
    }

    #[test]
    fn http_other_majors_unversioned_and_tasks_are_not() {
        for name in [
            "wasi:http/types@0.2.3",
            "wasi:http/outgoing-handler@0.2.3",
            "wasi:io/streams@0.3.0",
            "wasi:keyvalue/store@0.2.0",
            "wasi:io/streams@0.2.0-rc-2023-11-10",
            "wasi:io/streams",
            "cairn:task/blobs@0.2.0",
            "example:words/count@0.1.0",
        ] {
            assert!(!host_provided(name), "{name}");
        }
    }

    #[test]
    fn the_error_names_the_import_and_how_to_drop_it() {
        let e = unprovided_error("app.wasm", &["wasi:http/types@0.2.3"]);
        let msg = e.to_string();
        assert!(
            msg.contains("app.wasm imports `wasi:http/types@0.2.3`"),
            "{msg}"
        );
        assert!(msg.contains("rebuild the component without it"), "{msg}");
        assert!(msg.contains("--disable http fetch-event"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        let other = unprovided_error("app.wasm", &["wasi:nn/graph@0.2.0"]).to_string();
        assert!(!other.contains("--disable"), "{other}");
    }

    /// A component importing `wasi:http` loads (and says what it lacks), and
    /// a call of it fails with the one-line error before anything compiles.
    #[test]
    fn a_component_importing_wasi_http_fails_by_name_before_compiling() {
        let bytes = crate::testing::component_of(
            r#"package test:app;
package wasi:http@0.2.3 {
  interface outgoing-handler { handle: func() -> u32; }
}
world app {
  import wasi:http/outgoing-handler@0.2.3;
  export run: func() -> u32;
}"#,
            Some("app"),
            r#"(module
  (import "wasi:http/outgoing-handler@0.2.3" "handle" (func $handle (result i32)))
  (func (export "run") (result i32) (call $handle)))"#,
        );
        let dir = tempfile::tempdir().unwrap();
        let host = crate::Host::open(dir.path()).unwrap();
        let task = host.load_bytes("app.wasm", bytes).unwrap();
        assert_eq!(
            task.unprovided_imports(),
            ["wasi:http/outgoing-handler@0.2.3"]
        );
        let err = host.call(&task, "run", &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidComponent);
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "app.wasm imports `wasi:http/outgoing-handler@0.2.3`, which cairn does not provide"
            ),
            "{msg}"
        );
        let bound = host.bind(&task, &[], &[]).unwrap_err().to_string();
        assert_eq!(bound, msg);
    }
}
