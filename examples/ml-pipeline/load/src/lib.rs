//! `load`: CSV → dataset blob (see `parse-csv` in ml.wit).

use cairn_guest::{Blob, BlobExt, Writer};
use std::io::{BufRead, BufReader, Write};

wit_bindgen::generate!({
    path: "../wit",
    world: "example:ml/loader",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

struct Load;

impl exports::example::ml::load::Guest for Load {
    fn parse_csv(csv: &Blob) -> Result<Blob, String> {
        let mut lines = BufReader::with_capacity(1 << 20, csv.reader()).lines();
        let header = lines.next().ok_or("the CSV is empty")?.map_err(|e| e.to_string())?;
        let cols = header.split(',').count();
        let mut values: Vec<u8> = Vec::new();
        let mut rows: u32 = 0;
        for (i, line) in lines.enumerate() {
            let line = line.map_err(|e| e.to_string())?;
            if line.is_empty() {
                continue;
            }
            let mut n = 0;
            for field in line.split(',') {
                let x: f32 = field.trim().parse().map_err(|_| format!("line {}: `{field}` is not a number", i + 2))?;
                values.extend_from_slice(&x.to_le_bytes());
                n += 1;
            }
            if n != cols {
                return Err(format!("line {}: {n} fields, the header has {cols}", i + 2));
            }
            rows += 1;
        }
        let mut out = Writer::new();
        out.write_all(&rows.to_le_bytes()).map_err(|e| e.to_string())?;
        out.write_all(&(cols as u32).to_le_bytes()).map_err(|e| e.to_string())?;
        for chunk in values.chunks(1 << 20) {
            out.write_all(chunk).map_err(|e| e.to_string())?;
        }
        Ok(out.finish())
    }
}

export!(Load);
