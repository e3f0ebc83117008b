//! Crash safety. Writes go object first, index last, in one redb
//! transaction; this kills `cairn` processes (SIGKILL) at arbitrary moments
//! while they store results, and then checks that the cache opens and every
//! entry verifies: no key points at a missing or wrong value.

use std::time::Duration;

use cairn_host::Host;

use crate::support::{example, ml_csv};

#[test]
fn killed_writers_never_leave_a_key_pointing_at_a_bad_value() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let load = example("ml_load");
    let bin = assert_cmd::cargo::cargo_bin("cairn");
    let run = |csv: &std::path::Path| {
        std::process::Command::new(&bin)
            .arg("--cache-dir")
            .arg(cache.path())
            .arg("run")
            .arg(&load)
            .arg("--csv")
            .arg(format!("@{}", csv.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // 3,000 rows: a 108 KB dataset blob, stored as an object file.
    const KILLS: u64 = 30;
    let csvs: Vec<_> = (0..KILLS)
        .map(|i| {
            let p = dir.path().join(format!("{i}.csv"));
            ml_csv(&p, 3000, i);
            p
        })
        .collect();
    // Compile once, so that each later run spends its time executing and storing.
    assert!(run(&csvs[0]).wait().unwrap().success());
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let (mut killed, mut finished) = (0, 0);
    for (i, csv) in csvs[1..].iter().enumerate() {
        let mut child = run(csv);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Fault injection, not a timing assertion: kills land at random
        // points of the run, and the first lands at once (no process opens
        // the cache, executes and stores in the time `spawn` takes to
        // return), so at least one run is killed however fast the machine.
        if i > 0 {
            std::thread::sleep(Duration::from_micros(rng % 25_000));
        }
        match child.try_wait().unwrap() {
            Some(status) if status.success() => finished += 1,
            _ => {
                child.kill().unwrap();
                child.wait().unwrap();
                killed += 1;
            }
        }
    }
    assert!(
        killed > 0,
        "no process was killed mid-run; the test proves nothing"
    );
    let host = Host::open(cache.path()).expect("the cache opens after the kills");
    let v = host.verify().unwrap();
    assert!(v.damaged.is_empty(), "damaged entries: {:?}", v.damaged);
    assert!(
        v.checked > finished,
        "every finished run's result is there ({finished} + the warm-up)"
    );
    drop(host);
    // Every input still gives its right answer, stored or recomputed.
    for csv in &csvs {
        let out = run(csv).wait_with_output().unwrap();
        assert!(out.status.success());
    }
    let v = Host::open(cache.path()).unwrap().verify().unwrap();
    assert_eq!((v.checked, v.damaged.len()), (KILLS as usize, 0));
    eprintln!("{killed} killed, {finished} finished before the kill");
}
