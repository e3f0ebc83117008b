//! A task that tries everything the sandbox must stop. Each export is one
//! hostile behaviour; `ok` is the control.

use std::hint::black_box;
use std::io::Write;

wit_bindgen::generate!({
    path: "wit",
    world: "test:hostile/hostile",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

struct Hostile;

#[inline(never)]
fn deep(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let pad = black_box([n; 16]);
    1 + deep(black_box(n - 1)) + pad[3] % 2
}

impl Guest for Hostile {
    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    fn env_count() -> u32 {
        std::env::vars().count() as u32
    }

    fn connect(addr: String) -> Result<(), String> {
        std::net::TcpStream::connect(addr).map(drop).map_err(|e| e.to_string())
    }

    fn spin() -> u64 {
        let mut n: u64 = 0;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }

    fn hog(mib: u64) -> u64 {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for i in 0..mib {
            kept.push(vec![i as u8; 1 << 20]);
        }
        kept.iter().map(|v| v[0] as u64).sum()
    }

    fn recurse(depth: u64) -> u64 {
        deep(depth)
    }

    fn shout(mib: u64) -> u64 {
        let line = vec![b'x'; 1 << 20];
        let mut out = std::io::stdout();
        for _ in 0..mib {
            out.write_all(&line).expect("stdout refused the write");
        }
        mib
    }

    fn hoard(n: u32) -> u32 {
        let kept: Vec<cairn_guest::Blob> = (0..n).map(|i| cairn_guest::Blob::new(&i.to_le_bytes())).collect();
        kept.len() as u32
    }

    fn panic(message: String) -> u32 {
        panic!("{message}")
    }

    fn flood(gib: u64) -> u64 {
        let line = vec![b'x'; 1 << 20];
        let mut out = std::io::stdout();
        for _ in 0..gib << 10 {
            // A writer that never looks at errors: only a trap stops it.
            let _ = black_box(out.write_all(&line));
        }
        gib
    }

    fn say(text: String) -> u32 {
        println!("{text}");
        eprintln!("{}", text.chars().rev().collect::<String>());
        text.len() as u32
    }

    fn ok() -> String {
        "fine".into()
    }
}

export!(Hostile);
