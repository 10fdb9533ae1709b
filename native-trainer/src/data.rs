//! Labelled examples for training and evaluation: the TweepFake CSV (`screen_name;text;account.type;
//! class_type`, header row, label `account.type`: `bot` = 1, `human` = 0; the account and the generator
//! are kept where their columns exist, for per-generator metrics and grouped cross-validation) and
//! GLUE/CoLA-style TSV (`index<TAB>label<TAB>mark<TAB>text`, no header). Malformed rows are errors with
//! file and line, unless the caller skips them, and then they are counted.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// One labelled text; `label` is the class index (`human` = 0, `bot` = 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub label: u32,
    /// The author's screen name (TweepFake's `screen_name`), where the file has one.
    pub account: Option<String>,
    /// What wrote the text (TweepFake's `class_type`: `human`, `gpt2`, `rnn`, `others`), where known.
    pub generator: Option<String>,
}

impl Example {
    /// A text and its label, with no account or generator.
    pub fn new(text: impl Into<String>, label: u32) -> Self {
        Example { text: text.into(), label, account: None, generator: None }
    }
}

/// A labelled data file and what was skipped while reading it.
#[derive(Debug)]
pub struct Dataset {
    pub path: PathBuf,
    pub examples: Vec<Example>,
    /// `file:line: reason` of each skipped row.
    pub skipped: Vec<String>,
}

/// The label names, by index.
pub const LABELS: [&str; 2] = ["human", "bot"];

/// The TweepFake folder: `TWEEPFAKE_DIR`, else `../shared/data/tweepfake`.
pub fn tweepfake_dir() -> PathBuf {
    std::env::var_os("TWEEPFAKE_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("../shared/data/tweepfake"))
}

/// The training file when none is given: `$TWEEPFAKE_DIR/train.csv`.
pub fn default_train_file() -> PathBuf {
    tweepfake_dir().join("train.csv")
}

/// The validation file when none is given: `$TWEEPFAKE_DIR/validation.csv`.
pub fn default_validation_file() -> PathBuf {
    tweepfake_dir().join("validation.csv")
}

fn label_index(name: &str) -> Option<u32> {
    match name.trim() {
        "human" | "0" => Some(0),
        "bot" | "1" => Some(1),
        _ => None,
    }
}

impl Dataset {
    /// Reads a `.csv` (TweepFake) or `.tsv` (CoLA-style) file; `limit` keeps the first rows only.
    pub fn read(path: &Path, skip_bad_rows: bool, limit: Option<usize>) -> Result<Self> {
        let source = crate::input::read_text_file(path)?;
        let origin = path.display().to_string();
        let tsv = path.extension().is_some_and(|e| e == "tsv");
        let rows = parse(&source, &origin, tsv)?;
        let mut dataset = Dataset { path: path.to_path_buf(), examples: Vec::new(), skipped: Vec::new() };
        for row in rows {
            match row {
                Ok(example) => dataset.examples.push(example),
                Err(message) if skip_bad_rows => dataset.skipped.push(message),
                Err(message) => bail!("{message} (pass --skip-bad-rows to skip such rows)"),
            }
            if limit.is_some_and(|l| dataset.examples.len() >= l) {
                break;
            }
        }
        if dataset.examples.is_empty() {
            bail!("{origin} has no usable rows");
        }
        Ok(dataset)
    }

    /// Logs what was skipped while reading, if anything.
    pub fn warn_skipped(&self) {
        if let Some(first) = self.skipped.first() {
            tracing::warn!("skipped {} malformed rows of {} (first: {first})", self.skipped.len(), self.path.display());
        }
    }

    /// Examples in a seeded random order.
    pub fn shuffled(&self, seed: u64) -> Vec<&Example> {
        let mut order: Vec<&Example> = self.examples.iter().collect();
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        order
    }
}

/// One row of a labelled file: an example, or why the row is unusable (with file and line).
pub type Row = std::result::Result<Example, String>;

/// The rows of a TweepFake CSV, or of a CoLA-style TSV when `tsv`; an error only when the whole file is
/// unusable (no header with the needed columns).
pub fn parse(source: &str, origin: &str, tsv: bool) -> Result<Vec<Row>> {
    if tsv {
        Ok(parse_tsv(source, origin))
    } else {
        parse_tweepfake(source, origin)
    }
}

fn parse_tweepfake(source: &str, origin: &str) -> Result<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').flexible(true).from_reader(source.as_bytes());
    let headers = reader.headers().with_context(|| format!("{origin}: reading the header"))?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (account_col, generator_col) = (column("screen_name"), column("class_type"));
    let (Some(text_col), Some(label_col)) = (column("text"), column("account.type")) else {
        bail!("{origin}:1: expected a header with `text` and `account.type` columns, found {:?}", headers);
    };
    let broken = crate::input::unterminated_quotes(source, b';');
    Ok(reader
        .records()
        .map(|record| {
            let record = record
                .map_err(|e| format!("{origin}:{}: unreadable row: {e}", e.position().map_or(0, |p| p.line())))?;
            let line = record.position().map_or(0, |p| p.line());
            let last_line = line + record.iter().map(|f| f.matches('\n').count() as u64).sum::<u64>();
            if let Some(&quote) = broken.iter().find(|(first, _)| (line..=last_line).contains(first)) {
                return Err(crate::input::unterminated_quote_message(origin, quote));
            }
            if record.len() != headers.len() {
                return Err(format!("{origin}:{line}: expected {} fields, found {}", headers.len(), record.len()));
            }
            let label = record.get(label_col).unwrap_or_default();
            let label =
                label_index(label).ok_or_else(|| format!("{origin}:{line}: unknown label {label:?} (bot or human)"))?;
            let optional = |col: Option<usize>| col.and_then(|c| record.get(c)).map(|v| v.trim().to_string());
            Ok(Example {
                text: record.get(text_col).unwrap_or_default().to_string(),
                label,
                account: optional(account_col).filter(|a| !a.is_empty()),
                generator: optional(generator_col).filter(|g| !g.is_empty()),
            })
        })
        .collect())
}

fn parse_tsv(source: &str, origin: &str) -> Vec<Row> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() != 4 {
                return Err(format!("{origin}:{}: expected 4 tab-separated fields, found {}", i + 1, fields.len()));
            }
            let label =
                label_index(fields[1]).ok_or_else(|| format!("{origin}:{}: unknown label {:?}", i + 1, fields[1]))?;
            Ok(Example::new(fields[3], label))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, content: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("tg-data-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn reads_tweepfake_and_reports_bad_rows_with_line_numbers() {
        let path = write("a.csv", "screen_name;text;account.type;class_type\na;hi;bot;others\nb;x;robot;others\nc;\"q;uoted\";human;human\nd;short\n");
        let err = Dataset::read(&path, false, None).unwrap_err().to_string();
        assert!(err.contains("a.csv:3") && err.contains("robot"), "{err}");
        let data = Dataset::read(&path, true, None).unwrap();
        let with = |text: &str, label, account: &str, generator: &str| Example {
            account: Some(account.into()),
            generator: Some(generator.into()),
            ..Example::new(text, label)
        };
        assert_eq!(data.examples, [with("hi", 1, "a", "others"), with("q;uoted", 0, "c", "human")]);
        assert_eq!(data.skipped.len(), 2);
        assert!(data.skipped[1].contains("a.csv:5"), "{:?}", data.skipped);
    }

    #[test]
    fn a_stray_quote_is_reported_with_the_lines_it_swallowed() {
        let path = write("q.csv", "screen_name;text;account.type;class_type\na;\"oops;bot;others\nb;x;human;human\nc;y \" z;bot;others\nd;\"two\nlines\";human;human\n");
        let err = Dataset::read(&path, false, None).unwrap_err().to_string();
        assert!(err.contains("q.csv:2-4: unterminated quote"), "{err}");
        let data = Dataset::read(&path, true, None).unwrap();
        assert_eq!(
            data.examples,
            [Example { account: Some("d".into()), generator: Some("human".into()), ..Example::new("two\nlines", 0) }]
        );
        assert!(data.skipped.len() == 1 && data.skipped[0].contains("q.csv:2-4"), "{:?}", data.skipped);
    }

    #[test]
    fn reads_cola_tsv() {
        let path = write("b.tsv", "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe more.\n\nbad line\n");
        let err = Dataset::read(&path, false, None).unwrap_err().to_string();
        assert!(err.contains("b.tsv:4"), "{err}");
        let data = Dataset::read(&path, true, Some(1)).unwrap();
        assert_eq!(data.examples.len(), 1);
        assert_eq!(data.examples[0].label, 1);
    }

    #[test]
    fn shuffling_is_deterministic() {
        let path = write("c.tsv", &(0..50).map(|i| format!("x\t{}\t\tt{i}\n", i % 2)).collect::<String>());
        let data = Dataset::read(&path, false, None).unwrap();
        assert_eq!(data.shuffled(3), data.shuffled(3));
        assert_ne!(data.shuffled(3), data.shuffled(4));
    }
}
