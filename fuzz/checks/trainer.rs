//! What the trainer's readers of data files must do with any bytes, checked by the fuzz targets
//! (`fuzz/fuzz_targets/`) and replayed over the saved corpus on stable by
//! `native-trainer/tests/fuzz_corpus.rs`. The bytes go through the same steps as a file on disk (decoded
//! as the page decodes, line ends made Unix). Invariants: no panic; every row is returned or reported with
//! a line number inside the file; where no quote can join lines, one row per non-empty line.

use native_trainer::data::{self, Row};
use native_trainer::input::{self, InputFormat};

const ORIGIN: &str = "fuzz.csv";

/// The source text of `data`, as the readers of files see it.
fn source(data: &[u8]) -> String {
    input::unix_line_ends(input::decode_text(data.to_vec(), ORIGIN))
}

/// Lines of `source` that hold a record (the CSV reader skips empty ones).
fn non_empty_lines(source: &str) -> usize {
    source.split('\n').filter(|l| !l.is_empty()).count()
}

/// Lines of `source` that hold something other than whitespace (the line readers skip the rest).
fn non_blank_lines(source: &str) -> usize {
    source.lines().filter(|l| !l.trim().is_empty()).count()
}

/// The line an error message names (`ORIGIN:LINE: ...` or `ORIGIN:FIRST-LAST: ...`) is inside the file.
fn assert_located(message: &str, source: &str) {
    let rest = message.strip_prefix(&format!("{ORIGIN}:")).unwrap_or_else(|| panic!("no file named: {message}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let line: usize = digits.parse().unwrap_or_else(|_| panic!("no line number: {message}"));
    assert!(line >= 1 && line <= source.split('\n').count(), "line {line} outside the file: {message}");
}

fn check_rows(rows: &[Row], source: &str, header_lines: usize) {
    for row in rows {
        match row {
            Ok(example) => {
                assert!(example.label <= 1, "label {}", example.label);
                if !source.contains('"') {
                    assert!(source.contains(&example.text), "text {:?} is not in the file", example.text);
                }
            }
            Err(message) => assert_located(message, source),
        }
    }
    if !source.contains('"') {
        assert_eq!(rows.len(), non_empty_lines(source).saturating_sub(header_lines), "rows lost or invented");
    }
}

/// The TweepFake reader (`screen_name;text;account.type;class_type`).
pub fn tweepfake_csv(data: &[u8]) {
    let source = source(data);
    if let Ok(rows) = data::parse(&source, ORIGIN, false) {
        check_rows(&rows, &source, 1);
    }
}

/// The CoLA-style TSV reader (`index<TAB>label<TAB>mark<TAB>text`): never refuses the whole file.
pub fn cola_tsv(data: &[u8]) {
    let source = source(data);
    let rows = data::parse(&source, ORIGIN, true).expect("a TSV file is read row by row");
    for row in &rows {
        if let Err(message) = row {
            assert_located(message, &source);
        }
    }
    assert_eq!(rows.len(), non_blank_lines(&source), "rows lost or invented");
}

/// `predict --input`: the first byte picks lines, CSV (text column `text`) or TSV; what comes back is one
/// text per record, or an error that names a line.
pub fn predict_input(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let format = [InputFormat::Lines, InputFormat::Csv, InputFormat::Tsv][pick as usize % 3];
    let source = source(rest);
    match input::texts(&source, ORIGIN, format, "text") {
        Ok(texts) => match format {
            InputFormat::Lines | InputFormat::Tsv => assert_eq!(texts.len(), non_blank_lines(&source)),
            InputFormat::Csv if !source.contains('"') => {
                assert_eq!(texts.len(), non_empty_lines(&source).saturating_sub(1), "rows lost or invented")
            }
            InputFormat::Csv => {}
        },
        Err(err) => {
            let message = err.to_string();
            if message.starts_with(&format!("{ORIGIN}:"))
                && message[ORIGIN.len() + 1..].starts_with(|c: char| c.is_ascii_digit())
            {
                assert_located(&message, &source);
            }
        }
    }
}
