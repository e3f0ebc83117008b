//! `cairn run`'s own options after the component: moved in front of it
//! before clap parses, as `wasmtime run -v app.wasm` and `cairn run app.wasm
//! -v` should mean the same.
//!
//! Everything after the component is the task's export and `--name value`
//! arguments, so an option there is cairn's only when it is one of `run`'s
//! (read from the clap definition, so a new option is covered) and comes
//! before a `--`; after a `--` every argument is the task's. When a task
//! also has a parameter of that name, `run` refuses the call as ambiguous
//! (see [`hoist`]'s second result) rather than guess.

use std::ffi::{OsStr, OsString};

/// Moves `run`'s options found after the component in `argv` in front of
/// it. Returns the new argument vector and the names of the options moved
/// (`timeout`, `json`, …), for `run` to check against the task's
/// parameters. Any other command line is returned unchanged.
pub fn hoist(cli: &clap::Command, argv: Vec<OsString>) -> (Vec<OsString>, Vec<String>) {
    let Some(run) = cli.find_subcommand("run") else {
        return (argv, Vec::new());
    };
    let takes_value = |cmd: &clap::Command, name: &str| -> Option<bool> {
        cmd.get_arguments()
            .chain(cli.get_arguments())
            .find(|a| a.get_long() == Some(name))
            .map(|a| a.get_action().takes_values())
    };
    // `cairn [--cache-dir DIR] run …`
    let mut i = 1;
    loop {
        match argv.get(i).and_then(|a| a.to_str()) {
            Some("run") => break,
            Some(a) if a.starts_with("--") => {
                let name = long_name(OsStr::new(a)).unwrap_or_default();
                match takes_value(cli, &name) {
                    Some(true) if !a.contains('=') => i += 2,
                    Some(_) => i += 1,
                    None => return (argv, Vec::new()),
                }
            }
            _ => return (argv, Vec::new()),
        }
    }
    // The component: the first argument that is not an option or its value.
    i += 1;
    let component = loop {
        let Some(a) = argv.get(i) else {
            return (argv, Vec::new());
        };
        if a == "--" {
            return (argv, Vec::new());
        }
        match long_name(a) {
            Some(name) => match takes_value(run, &name) {
                Some(true) if !a.as_encoded_bytes().contains(&b'=') => i += 2,
                Some(_) => i += 1,
                None => return (argv, Vec::new()),
            },
            None if is_short(a) => i += 1,
            None => break i,
        }
    };
    let mut moved_args = Vec::new();
    let mut names = Vec::new();
    let mut rest = Vec::new();
    let mut j = component + 1;
    while j < argv.len() {
        let a = &argv[j];
        if a == "--" {
            rest.extend_from_slice(&argv[j..]);
            break;
        }
        let own = match long_name(a) {
            Some(name) => takes_value(run, &name).map(|v| (name, v)),
            None if a == "-v" || a == "-h" => Some((String::new(), false)),
            None => None,
        };
        match own {
            Some((name, value)) => {
                moved_args.push(a.clone());
                if value && !a.as_encoded_bytes().contains(&b'=') {
                    if let Some(v) = argv.get(j + 1) {
                        moved_args.push(v.clone());
                        j += 1;
                    }
                }
                if !name.is_empty() {
                    names.push(name);
                }
            }
            None => rest.push(a.clone()),
        }
        j += 1;
    }
    let mut out = argv[..component].to_vec();
    out.extend(moved_args);
    out.push(argv[component].clone());
    out.extend(rest);
    (out, names)
}

/// `name` of `--name` or `--name=value`.
fn long_name(arg: &OsStr) -> Option<String> {
    let text = arg.to_str()?.strip_prefix("--")?;
    let name = text.split_once('=').map_or(text, |(n, _)| n);
    (!name.is_empty()).then(|| name.to_string())
}

/// `-v`, `-h`: a short switch.
fn is_short(arg: &OsStr) -> bool {
    let b = arg.as_encoded_bytes();
    b.len() == 2 && b[0] == b'-' && b[1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn hoisted(args: &[&str]) -> (Vec<String>, Vec<String>) {
        let argv = args.iter().map(OsString::from).collect();
        let (out, names) = hoist(&crate::cli::Cli::command(), argv);
        let out = out.into_iter().map(|a| a.into_string().unwrap()).collect();
        (out, names)
    }

    #[test]
    fn options_after_the_component_move_before_it() {
        let (out, names) = hoisted(&[
            "cairn",
            "--cache-dir",
            "/c",
            "run",
            "--json",
            "t.wasm",
            "greet",
            "--name",
            "Ada",
            "-v",
            "--timeout",
            "1s",
            "--env=A=b",
            "--",
            "--fuel",
            "3",
        ]);
        assert_eq!(
            out,
            [
                "cairn",
                "--cache-dir",
                "/c",
                "run",
                "--json",
                "-v",
                "--timeout",
                "1s",
                "--env=A=b",
                "t.wasm",
                "greet",
                "--name",
                "Ada",
                "--",
                "--fuel",
                "3"
            ]
        );
        assert_eq!(names, ["timeout", "env"]);
    }

    #[test]
    fn other_command_lines_are_left_alone() {
        for args in [
            &["cairn", "cache", "ls", "--json"][..],
            &["cairn", "run", "--bogus", "t.wasm", "--json"],
            &["cairn", "run"],
        ] {
            assert_eq!(hoisted(args).0, args);
        }
    }
}
