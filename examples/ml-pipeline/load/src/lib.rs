//! `load`: CSV → dataset blob (see `parse-csv` in ml.wit).

use cairn_guest::{Blob, BlobExt, Writer};
use std::io::Write;

mod csv;

wit_bindgen::generate!({
    path: "../wit",
    world: "example:ml/loader",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

struct Load;

impl exports::example::ml::load::Guest for Load {
    fn parse_csv(csv: &Blob) -> Result<Blob, String> {
        let bytes = csv::parse(csv.reader())?;
        let mut out = Writer::new();
        for chunk in bytes.chunks(1 << 20) {
            out.write_all(chunk).map_err(|e| e.to_string())?;
        }
        Ok(out.finish())
    }
}

export!(Load);
