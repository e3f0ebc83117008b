//! The CSV parser of `load`, shared with cairn's cold-run benchmark (which
//! compiles it natively): no wasm or SDK types here.

use std::io::{BufRead, BufReader, Read};

/// The dataset blob's bytes (see `common/dataset.rs`) of a CSV with a header
/// line and numeric fields.
pub fn parse(csv: impl Read) -> Result<Vec<u8>, String> {
    let mut lines = BufReader::with_capacity(1 << 20, csv).lines();
    let header = lines
        .next()
        .ok_or("the CSV is empty")?
        .map_err(|e| e.to_string())?;
    let cols = header.split(',').count();
    // Rows and columns first, filled in at the end.
    let mut out: Vec<u8> = vec![0; 8];
    let mut rows: u32 = 0;
    for (i, line) in lines.enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.is_empty() {
            continue;
        }
        let mut n = 0;
        for field in line.split(',') {
            let x: f32 = field
                .trim()
                .parse()
                .map_err(|_| format!("line {}: `{field}` is not a number", i + 2))?;
            out.extend_from_slice(&x.to_le_bytes());
            n += 1;
        }
        if n != cols {
            return Err(format!("line {}: {n} fields, the header has {cols}", i + 2));
        }
        rows += 1;
    }
    out[0..4].copy_from_slice(&rows.to_le_bytes());
    out[4..8].copy_from_slice(&(cols as u32).to_le_bytes());
    Ok(out)
}
