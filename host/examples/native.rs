//! The examples' kernels compiled natively from their own source (the same
//! files the wasm tasks compile), one step per process, so `bench/cold.sh`
//! can compare each step's CPU time with cairn's.
//!
//! ```text
//! native parse CSV OUT        # load: CSV → dataset bytes in OUT
//! native train DATA LR EPOCHS # train: prints the weights as a WAVE list
//! native evaluate DATA W...   # evaluate: prints rows, accuracy and loss
//! native words TEXT N         # words: the N most frequent words
//! ```
//!
//! Each step reads its input from a file, as cairn's task reads its blob.

#[path = "../../examples/words/src/count.rs"]
mod count;
#[path = "../../examples/ml-pipeline/load/src/csv.rs"]
mod csv;
#[path = "../../examples/ml-pipeline/common/dataset.rs"]
mod dataset;
#[path = "../../examples/ml-pipeline/train/src/fit.rs"]
mod fit;
#[path = "../../examples/ml-pipeline/evaluate/src/score.rs"]
mod score;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("native: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let num = |s: &String| s.parse::<f64>().map_err(|e| format!("`{s}`: {e}"));
    let dataset = |path: &String| {
        let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        dataset::Dataset::from_bytes(&bytes)
    };
    match args {
        [step, csv, out] if step == "parse" => {
            let file = std::fs::File::open(csv).map_err(|e| format!("{csv}: {e}"))?;
            let bytes = csv::parse(file)?;
            std::fs::write(out, &bytes).map_err(|e| format!("{out}: {e}"))?;
            Ok(format!("{} bytes", bytes.len()))
        }
        [step, data, lr, epochs] if step == "train" => {
            let epochs = epochs.parse().map_err(|e| format!("`{epochs}`: {e}"))?;
            let weights = fit::fit(&dataset(data)?, num(lr)?, epochs);
            let list: Vec<String> = weights.iter().map(|w| format!("{w:?}")).collect();
            Ok(format!("[{}]", list.join(", ")))
        }
        [step, data, weights @ ..] if step == "evaluate" => {
            let weights = weights.iter().map(num).collect::<Result<Vec<f64>, _>>()?;
            let data = dataset(data)?;
            let (right, loss) = score::score(&data, &weights);
            let n = data.rows.max(1) as f64;
            Ok(format!(
                "rows {} accuracy {:?} loss {:?}",
                data.rows,
                right as f64 / n,
                loss / n
            ))
        }
        [step, text, n] if step == "words" => {
            let n = n.parse().map_err(|e| format!("`{n}`: {e}"))?;
            let file = std::fs::File::open(text).map_err(|e| format!("{text}: {e}"))?;
            Ok(format!("{:?}", count::top(file, n)))
        }
        _ => Err(
            "usage: native parse CSV OUT | train DATA LR EPOCHS | evaluate DATA W... | words TEXT N"
                .into(),
        ),
    }
}
