// The dataset blob layout that `load` writes, and the model, shared by
// `load`, `train` and `evaluate` (with `#[path]`) and by cairn's cold-run
// benchmark, which compiles the very same code natively. No wasm or SDK
// types here.

/// A dataset in memory: `rows` × `cols` values, label last in each row.
pub struct Dataset {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

impl Dataset {
    /// The dataset in a blob's bytes: rows and columns (u32 LE), then the
    /// values (f32 LE) row by row.
    pub fn from_bytes(bytes: &[u8]) -> Result<Dataset, String> {
        if bytes.len() < 8 {
            return Err("not a dataset: shorter than its header".into());
        }
        let rows = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let cols = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        if cols < 2 || bytes.len() != 8 + rows * cols * 4 {
            return Err(format!("not a dataset of {rows} × {cols}"));
        }
        let values = bytes[8..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Ok(Dataset { rows, cols, values })
    }

    /// The features of row `r` and its label.
    pub fn row(&self, r: usize) -> (&[f32], f32) {
        let row = &self.values[r * self.cols..(r + 1) * self.cols];
        (&row[..self.cols - 1], row[self.cols - 1])
    }
}

/// The model's probability for `features` under `weights` (bias last).
pub fn predict(weights: &[f64], features: &[f32]) -> f64 {
    let mut z = weights[weights.len() - 1];
    for (w, x) in weights.iter().zip(features) {
        z += w * f64::from(*x);
    }
    1.0 / (1.0 + (-z).exp())
}
