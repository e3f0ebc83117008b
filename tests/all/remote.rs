//! The shared tier against a real `nats-server` (JetStream in a temporary
//! directory, on loopback): hosts with separate caches share results, one
//! machine executes a key the others wait for, flows dispatched to workers,
//! a worker killed mid-call, and a server that is down.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::pipeline::{each_call, manifest, run_task_with, text};
use crate::support::{cairn, example, failure, json, ml_csv, stdout, walk};

/// How long to wait for a server or worker to say something before calling
/// it hung: a guard against hanging forever, never a speed requirement (a
/// loaded machine may take a while; a line that comes ends the wait).
const HANG: Duration = Duration::from_secs(120);

/// A JetStream server on a free loopback port, stopped on drop.
struct Nats {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Nats {
    fn start() -> Nats {
        Nats::start_with(&[])
    }

    /// A server started with `extra` options (e.g. `--auth TOKEN`).
    fn start_with(extra: &[&str]) -> Nats {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Process::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start nats-server; install it (apt-get install nats-server), as .ci/run does");
        // Ready when it says so (its log goes to stderr, read to the end so
        // that it never blocks on a full pipe).
        let log = BufReader::new(child.stderr.take().unwrap());
        let (ready, said) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in log.lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = ready.send(());
                }
            }
        });
        said.recv_timeout(HANG)
            .expect("nats-server did not say it is ready (did it exit? is the port taken?)");
        Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// Runs `edit` against the server's JetStream, as another client would
    /// (to tamper with what cairn stored there).
    fn edit<F: std::future::Future<Output = ()>>(
        &self,
        edit: impl FnOnce(async_nats::jetstream::Context) -> F,
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let client = async_nats::connect(self.url.as_str()).await.unwrap();
            edit(async_nats::jetstream::new(client)).await
        });
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `cairn worker` process, killed on drop; its stderr is read line by line.
struct Worker {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Worker {
    fn start(nats: &Nats, cache: &Path, name: &str) -> Worker {
        let mut child = Process::new(assert_cmd::cargo::cargo_bin("cairn"))
            .env_remove("CAIRN_CACHE_DIR")
            .arg("--cache-dir")
            .arg(cache)
            .args([
                "worker",
                "--remote",
                &nats.url,
                "--name",
                name,
                "--ack-wait",
                "2s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let w = Worker { child, lines };
        w.wait_for("serving calls", HANG);
        w
    }

    /// Waits for a line of the worker's log containing `text`.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("the worker never logged {text:?}"),
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn greet(cache: &Path, remote: &[&str]) -> Json {
    json(
        cairn(cache)
            .arg("run")
            .args(remote)
            .arg(example("hello"))
            .args(["greet", "--name", "Ada", "--excited", "true"]),
    )
}

/// `(task, cache, remote, worker)` of each call of a run.
fn calls(out: &Json) -> Vec<(String, String, bool, Option<String>)> {
    each_call(out, |c| {
        let worker = c["worker"].as_str().map(str::to_string);
        (
            text(&c["component"]),
            text(&c["cache"]),
            c["remote"].as_bool().unwrap(),
            worker,
        )
    })
}

fn setup(rows: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    ml_csv(&data, rows, 11);
    let manifest = manifest(dir.path(), None, true);
    (dir, manifest, data)
}

#[test]
fn hosts_with_separate_caches_share_results() {
    let nats = Nats::start();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let remote = ["--remote", nats.url.as_str()];
    let first = greet(a.path(), &remote);
    assert_eq!(first["cache"], "miss");
    let second = greet(b.path(), &remote);
    assert_eq!(second["result"], first["result"]);
    assert_eq!(
        (second["cache"].as_str(), second["executed"].as_u64()),
        (Some("hit"), Some(0))
    );
    assert_eq!(second["calls"][0]["remote"], true);
    // The hit was copied into b's own cache: it answers without the server.
    let local = greet(b.path(), &[]);
    assert_eq!(
        (
            local["cache"].as_str(),
            local["calls"][0]["remote"].as_bool()
        ),
        (Some("hit"), Some(false))
    );
    assert_eq!(local["result"], first["result"]);
}

#[test]
fn two_machines_missing_the_same_key_at_once_execute_it_once() {
    let nats = Nats::start();
    let (dir, manifest, data) = setup(20_000);
    let caches = [dir.path().join("a"), dir.path().join("b")];
    let remote = ["--remote", nats.url.as_str()];
    let runs: Vec<Json> = std::thread::scope(|s| {
        let handles: Vec<_> = caches
            .iter()
            .map(|c| s.spawn(|| run_task_with(c, &manifest, "pipeline", &data, 400, &remote)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(runs[0]["result"], runs[1]["result"]);
    let executed: Vec<u64> = runs
        .iter()
        .map(|r| r["executed"].as_u64().unwrap())
        .collect();
    assert!(
        executed.contains(&0) && executed.iter().any(|&n| n > 0),
        "one machine must execute, the other take its result: {executed:?}"
    );
    let waited = runs.iter().find(|r| r["executed"] == 0).unwrap();
    assert_eq!(
        (
            waited["cache"].as_str(),
            waited["calls"][0]["remote"].as_bool()
        ),
        (Some("hit"), Some(true))
    );
}

#[test]
fn a_flow_dispatched_to_workers_is_a_whole_flow_hit_from_a_third_host() {
    let nats = Nats::start();
    let (dir, manifest, data) = setup(2_000);
    let _w1 = Worker::start(&nats, &dir.path().join("w1"), "w1");
    let _w2 = Worker::start(&nats, &dir.path().join("w2"), "w2");
    let remote = ["--remote", nats.url.as_str(), "--dispatch"];
    let client = dir.path().join("client");
    let out = run_task_with(&client, &manifest, "pipeline", &data, 10, &remote);
    let calls = calls(&out);
    let tasks = ["load", "train", "evaluate"];
    for (task, cache, _, worker) in &calls {
        match (tasks.contains(&task.as_str()), cache.as_str()) {
            (true, "miss") => assert!(
                matches!(worker.as_deref(), Some("w1" | "w2")),
                "{task} ran on {worker:?}"
            ),
            (true, _) => assert_eq!(worker, &None),
            // Flows orchestrate on the client.
            (false, _) => assert_eq!((cache.as_str(), worker), ("miss", &None)),
        }
    }
    assert_eq!(
        calls.iter().filter(|c| c.3.is_some()).count(),
        3,
        "{calls:?}"
    );

    // The dataset `load` made went from one worker's task to another's by
    // hash: the client took the entry, not the blob's bytes…
    let dataset = 8 + 2_000 * 9 * 4;
    let sizes = |dir: &Path| -> Vec<u64> {
        walk(&dir.join("objects"))
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect()
    };
    assert!(!sizes(&client).contains(&dataset), "{:?}", sizes(&client));
    // … until something reads them: fetched then, verified, and kept.
    let load = |cache: &Path, remote: &[&str]| {
        let got = cache.with_extension("out");
        let out = json(
            cairn(cache)
                .arg("run")
                .args(remote)
                .arg("--manifest")
                .arg(&manifest)
                .arg("--out")
                .arg(&got)
                .args(["load", "--csv", &format!("@{}", data.display())]),
        );
        let written: Vec<u64> = walk(&got)
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect();
        (out["cache"].clone(), written)
    };
    // An audit counts them as held when it can see the tier, not otherwise.
    let verify = |remote: &[&str]| {
        let out = cairn(&client)
            .args(["cache", "verify"])
            .args(remote)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (whole, said) = verify(&["--remote", nats.url.as_str()]);
    assert!(whole && said.contains(", 0 damaged"), "{said}");
    let (whole, said) = verify(&[]);
    assert!(!whole && said.contains("damaged "), "{said}");
    // (Without the shared tier, the same entry is a miss: recomputed.)
    let alone = dir.path().join("alone");
    let copied = Process::new("cp")
        .arg("-r")
        .arg(&client)
        .arg(&alone)
        .status();
    assert!(copied.unwrap().success());
    assert_eq!(load(&alone, &[]), ("miss".into(), vec![dataset]));
    assert_eq!(
        load(&client, &["--remote", nats.url.as_str()]),
        ("hit".into(), vec![dataset])
    );
    assert!(sizes(&client).contains(&dataset), "kept");

    let third = run_task_with(
        &dir.path().join("third"),
        &manifest,
        "pipeline",
        &data,
        10,
        &["--remote", nats.url.as_str()],
    );
    assert_eq!(third["result"], out["result"]);
    assert_eq!(third["cache"], "hit");
    assert_eq!(
        (
            third["executed"].as_u64(),
            third["calls"].as_array().unwrap().len()
        ),
        (Some(0), 1)
    );
    assert_eq!(third["calls"][0]["remote"], true);
}

#[test]
fn a_call_whose_worker_is_killed_is_completed_once_by_another() {
    let nats = Nats::start();
    let (dir, manifest, data) = setup(20_000);
    let mut first = Worker::start(&nats, &dir.path().join("w1"), "w1");
    let client = dir.path().join("client");
    let url = nats.url.clone();
    let (m, d, c) = (manifest.clone(), data.clone(), client.clone());
    let run = std::thread::spawn(move || {
        json(
            cairn(&c)
                .args(["run", "--remote", &url, "--dispatch", "--manifest"])
                .arg(&m)
                .args([
                    "training",
                    "--csv",
                    &format!("@{}", d.display()),
                    "--hp",
                    "{learning-rate: 0.5, epochs: 500}",
                ]),
        )
    });
    // Kill the first worker while it trains (load goes first, quickly).
    first.wait_for("running train", HANG);
    first.kill();
    let second = Worker::start(&nats, &dir.path().join("w2"), "w2");
    let out = run.join().unwrap();
    let train = calls(&out).into_iter().find(|c| c.0 == "train").unwrap();
    assert_eq!((train.1.as_str(), train.3.as_deref()), ("miss", Some("w2")));
    let done = second.wait_for("ran", HANG);
    assert!(done.contains("fit"), "{done}");
    // Stored once: by the worker that finished, not by the killed one.
    let has_fit = |cache: &Path| {
        let out = cairn(cache)
            .args(["cache", "ls", "--json"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("#fit")
    };
    assert!(has_fit(&dir.path().join("w2")));
    assert!(!has_fit(&dir.path().join("w1")));
}

#[test]
fn a_server_that_is_down_is_an_error_or_with_remote_optional_a_warning() {
    let mut nats = Nats::start();
    let url = nats.url.clone();
    nats.stop();
    let cache = tempfile::tempdir().unwrap();
    let (code, stderr) = failure(
        cairn(cache.path())
            .arg("run")
            .args(["--remote", &url])
            .arg(example("hello"))
            .args(["greet", "--name", "Ada", "--excited", "true"]),
    );
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--remote-optional"), "{stderr}");
    let out = cairn(cache.path())
        .arg("run")
        .args(["--remote", &url, "--remote-optional"])
        .arg(example("hello"))
        .args(["greet", "--name", "Ada", "--excited", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "\"Hello, ADA!\""
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: cannot reach NATS"));
    // The result was stored locally all the same.
    assert_eq!(greet(cache.path(), &[])["cache"], "hit");
}

#[test]
fn a_tampered_shared_result_is_a_miss_not_a_wrong_answer() {
    let nats = Nats::start();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let remote = ["--remote", nats.url.as_str()];
    let first = greet(a.path(), &remote);
    let key = first["key"].as_str().unwrap().to_string();
    // Rewrite the shared record with another greeting in its inline value.
    nats.edit(|js| async move {
        let kv = js.get_key_value("cairn_results").await.unwrap();
        let mut record = kv.get(&key).await.unwrap().unwrap().to_vec();
        let at = record
            .windows(11)
            .position(|w| w == b"Hello, ADA!")
            .expect("the value travels inside the record");
        record[at..at + 11].copy_from_slice(b"Hello, EVE!");
        kv.put(&key, record.into()).await.unwrap();
    });
    let second = greet(b.path(), &remote);
    assert_eq!(second["result"], first["result"]);
    assert_eq!(
        (second["cache"].as_str(), second["executed"].as_u64()),
        (Some("miss"), Some(1))
    );
}

#[test]
fn losing_the_server_mid_run_is_an_error_or_with_optional_local_only() {
    let mut nats = Nats::start();
    let caches = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let hosts: Vec<cairn_host::Host> = caches
        .iter()
        .zip([false, true])
        .map(|(dir, optional)| {
            let host = cairn_host::Host::open(dir.path()).unwrap();
            let mut cfg = cairn_host::RemoteConfig::new(nats.url.clone());
            cfg.optional = optional;
            cfg.timeout = Duration::from_secs(10);
            assert!(host.connect(cfg).unwrap());
            host
        })
        .collect();
    let greet = |host: &cairn_host::Host, name: &str| {
        let task = host.load(example("hello")).unwrap();
        let args = [
            cairn_host::Value::String(name.into()),
            cairn_host::Value::Bool(false),
        ];
        host.call(&task, "greet", &args)
    };
    greet(&hosts[0], "before").unwrap();
    nats.stop();
    let err = greet(&hosts[0], "after").unwrap_err();
    assert_eq!(err.kind(), cairn_host::ErrorKind::Remote);
    assert!(err.to_string().contains("--remote-optional"), "{err}");
    // What was stored before the loss is still answered, from the local cache.
    let before = greet(&hosts[0], "before").unwrap();
    assert_eq!(before.report.cache, cairn_host::CacheStatus::Hit);
    // Optional: a warning, then local-only, with the right answer.
    let out = greet(&hosts[1], "after").unwrap();
    assert_eq!(out.value.unwrap().to_wave(), "\"Hello, after.\"");
    assert_eq!(
        greet(&hosts[1], "after").unwrap().report.cache,
        cairn_host::CacheStatus::Hit
    );
}

#[test]
fn a_server_that_wants_a_token_gets_it_from_remote_token() {
    let nats = Nats::start_with(&["--auth", "s3cret"]);
    let cache = tempfile::tempdir().unwrap();
    let (code, stderr) = failure(
        cairn(cache.path())
            .arg("run")
            .args(["--remote", &nats.url])
            .arg(example("hello"))
            .args(["greet", "--name", "Ada", "--excited", "true"]),
    );
    assert_eq!((code, stderr.lines().count()), (2, 1), "{stderr}");
    let out = greet(
        cache.path(),
        &["--remote", &nats.url, "--remote-token", "s3cret"],
    );
    assert_eq!(out["cache"], "miss");
}

#[test]
fn refresh_with_dispatch_runs_the_call_again_on_a_worker() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::start(&nats, &dir.path().join("w1"), "w1");
    let client = dir.path().join("client");
    let remote = ["--remote", nats.url.as_str(), "--dispatch"];
    let first = greet(&client, &remote);
    assert_eq!(first["calls"][0]["worker"], "w1");
    assert!(worker.wait_for("w1: ", HANG).contains("running"));
    assert!(worker.wait_for("w1: ", HANG).contains("ran"));
    let again = greet(
        &client,
        &["--remote", nats.url.as_str(), "--dispatch", "--refresh"],
    );
    assert_eq!(
        (
            again["cache"].as_str(),
            again["calls"][0]["worker"].as_str()
        ),
        (Some("miss"), Some("w1"))
    );
    assert!(worker.wait_for("w1: ", HANG).contains("running"));
    let done = worker.wait_for("w1: ", HANG);
    assert!(
        done.contains(" ran "),
        "executed again, not answered from the cache: {done}"
    );
}

#[test]
fn entries_stored_before_the_tier_was_used_are_published_by_cache_push() {
    let nats = Nats::start();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = greet(a.path(), &[]);
    assert_eq!(first["cache"], "miss");
    let push = || {
        stdout(
            cairn(a.path())
                .args(["cache", "push", "--all", "--remote"])
                .arg(&nats.url),
        )
    };
    let pushed = push();
    assert!(
        pushed.starts_with("published 1 entries (0 already shared"),
        "{pushed}"
    );
    let shared = greet(b.path(), &["--remote", nats.url.as_str()]);
    assert_eq!(
        (shared["cache"].as_str(), shared["executed"].as_u64()),
        (Some("hit"), Some(0))
    );
    assert_eq!(shared["calls"][0]["remote"], true);
    assert_eq!(shared["result"], first["result"]);
    let again = push();
    assert!(
        again.starts_with("published 0 entries (1 already shared"),
        "{again}"
    );

    let (code, msg) = failure(cairn(a.path()).args(["cache", "push", "--all"]));
    assert_eq!(code, 2);
    assert!(msg.contains("--remote"), "{msg}");
}

#[test]
fn a_damaged_shared_blob_is_removed_and_recomputed_not_served() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    ml_csv(&data, 2_000, 3);
    let dataset = 8 + 2_000 * 9 * 4;
    let load = |cache: &str| {
        let got = dir.path().join(format!("{cache}.out"));
        let out = cairn(&dir.path().join(cache))
            .args(["run", "--json", "--remote", nats.url.as_str(), "--out"])
            .arg(&got)
            .arg(example("ml_load"))
            .args(["--csv", &format!("@{}", data.display())])
            .output()
            .unwrap();
        let written: Vec<Vec<u8>> = if out.status.success() {
            walk(&got)
                .iter()
                .map(|p| std::fs::read(p).unwrap())
                .collect()
        } else {
            Vec::new()
        };
        (out.status.success(), written)
    };
    let (ok, good) = load("a");
    assert!(ok && good.len() == 1 && good[0].len() == dataset);
    // Flip one byte of the dataset in the object store, keeping its size.
    nats.edit(|js| async move {
        use futures_util::StreamExt;
        use tokio::io::AsyncReadExt;
        let store = js.get_object_store("cairn_objects").await.unwrap();
        let mut list = store.list().await.unwrap();
        while let Some(info) = list.next().await {
            let info = info.unwrap();
            if info.size == dataset {
                let mut bytes = Vec::new();
                let mut object = store.get(&info.name).await.unwrap();
                object.read_to_end(&mut bytes).await.unwrap();
                bytes[100] ^= 1;
                store
                    .put(info.name.as_str(), &mut &bytes[..])
                    .await
                    .unwrap();
                return;
            }
        }
        panic!("the dataset is not in the object store");
    });
    // The first reader finds out and fails (the hit was already answered)…
    assert!(!load("b").0, "a damaged blob is never handed out");
    // … and removes it: from then on it is a miss, recomputed and published.
    assert_eq!(load("b"), (true, good.clone()));
    assert_eq!(load("c"), (true, good));
}

#[test]
fn a_sweeps_concurrent_calls_go_to_the_workers() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let _w1 = Worker::start(&nats, &dir.path().join("w1"), "w1");
    let _w2 = Worker::start(&nats, &dir.path().join("w2"), "w2");
    let sweep = crate::fanout::Sweep::new();
    let remote = ["--remote", nats.url.as_str(), "--dispatch"];
    let out = sweep.run(&dir.path().join("client"), "sweep", &[3, 5, 7], &remote);
    let local = sweep.run(&dir.path().join("local"), "sweep", &[3, 5, 7], &[]);
    assert_eq!(out["result"], local["result"]);
    // Every task that executed ran on a worker; the flows, on the client.
    let calls = calls(&out);
    for (task, cache, _, worker) in &calls {
        let flow = task == "sweep" || task == "training";
        match (flow, cache.as_str()) {
            (false, "miss") => assert!(
                matches!(worker.as_deref(), Some("w1" | "w2")),
                "{task} ran on {worker:?}"
            ),
            _ => assert_eq!(worker, &None, "{task}"),
        }
    }
    let fits = calls
        .iter()
        .filter(|c| c.0 == "train" && c.3.is_some())
        .count();
    assert_eq!(fits, 3, "{calls:?}");
}

#[test]
fn a_failed_publish_prints_the_result_warns_once_and_exits_3() {
    // The results bucket takes no record this size: every lookup works,
    // the publish after the call fails — as when the server dies mid-run.
    let nats = Nats::start();
    nats.edit(|js| async move {
        // The bucket's stream as cairn makes it (servers before 2.10 do not
        // answer the client's `create_key_value`), with a tiny message size.
        use async_nats::jetstream::stream;
        js.create_stream(stream::Config {
            name: "KV_cairn_results".into(),
            subjects: vec!["$KV.cairn_results.>".into()],
            max_messages_per_subject: 1,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            max_message_size: 16,
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let cache = tempfile::tempdir().unwrap();
    let out = cairn(cache.path())
        .arg("run")
        .args(["--remote", &nats.url])
        .arg(example("hello"))
        .args(["greet", "--name", "Ada", "--excited"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "\"Hello, ADA!\"",
        "the computed result is printed"
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("cairn cache push"), "{stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with("error:")), "{stderr}");
    // Kept locally: a hit without the server.
    assert_eq!(greet(cache.path(), &[])["cache"], "hit");
}
