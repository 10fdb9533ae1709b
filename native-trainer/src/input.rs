//! Reading texts to classify: plain lines, CSV with a sniffed delimiter and a named text column, or
//! GLUE/CoLA-style TSV (`index<TAB>label<TAB>mark<TAB>text`, no header). Malformed rows are reported with
//! their line number.

use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};

/// The layout of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// One text per line; empty lines are skipped.
    Lines,
    /// Delimited with a header row; the delimiter (`,` `;` or tab) is sniffed from the header.
    Csv,
    /// GLUE/CoLA style: `index<TAB>label<TAB>mark<TAB>text`, no header.
    Tsv,
}

/// Reads all of `path` (`-` for standard input).
pub fn read_source(path: &str) -> Result<String> {
    let mut text = String::new();
    if path == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    }
    Ok(text)
}

/// Picks the delimiter that splits the header line into the most fields.
pub fn sniff_delimiter(header: &str) -> u8 {
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| header.bytes().filter(|b| b == d).count())
        .unwrap_or(b',')
}

/// Extracts the texts of `source` (named `origin` in error messages).
pub fn texts(source: &str, origin: &str, format: InputFormat, text_column: &str) -> Result<Vec<String>> {
    match format {
        InputFormat::Lines => Ok(source.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()),
        InputFormat::Csv => csv_texts(source, origin, text_column),
        InputFormat::Tsv => source
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, line)| {
                let fields: Vec<&str> = line.split('\t').collect();
                match fields.len() {
                    4 => Ok(fields[3].to_string()),
                    n => bail!("{origin}:{}: expected 4 tab-separated fields (index, label, mark, text), found {n}", i + 1),
                }
            })
            .collect(),
    }
}

fn csv_texts(source: &str, origin: &str, text_column: &str) -> Result<Vec<String>> {
    let header = source.lines().next().ok_or_else(|| anyhow!("{origin} is empty"))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(header))
        .flexible(false)
        .from_reader(source.as_bytes());
    let headers = reader.headers().with_context(|| format!("{origin}: reading the header row"))?.clone();
    let column = headers.iter().position(|h| h.trim() == text_column).ok_or_else(|| {
        anyhow!("{origin}: no column named {text_column:?} (columns: {})", headers.iter().collect::<Vec<_>>().join(", "))
    })?;
    let mut texts = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            anyhow!("{origin}:{line}: malformed row: {e}")
        })?;
        texts.push(record.get(column).unwrap_or_default().to_string());
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_semicolons_and_reads_the_text_column() {
        let src = "screen_name;text;account.type\na;hello; world;bot\n";
        let err = texts(src, "t.csv", InputFormat::Csv, "text").unwrap_err().to_string();
        assert!(err.contains("t.csv:2"), "{err}");
        let src = "screen_name;text;account.type\na;\"hello; world\";bot\nb;second;human\n";
        assert_eq!(texts(src, "t.csv", InputFormat::Csv, "text").unwrap(), ["hello; world", "second"]);
    }

    #[test]
    fn tsv_needs_four_fields() {
        assert_eq!(texts("0\t1\ta\thi there\n", "x", InputFormat::Tsv, "").unwrap(), ["hi there"]);
        let err = texts("0\t1\thi\n", "x.tsv", InputFormat::Tsv, "").unwrap_err().to_string();
        assert!(err.contains("x.tsv:1"), "{err}");
    }

    #[test]
    fn lines_skip_blanks() {
        assert_eq!(texts("a\n\n  \nb\n", "x", InputFormat::Lines, "").unwrap(), ["a", "b"]);
    }
}
