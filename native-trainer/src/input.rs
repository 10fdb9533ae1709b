//! Reading texts to classify: plain lines, CSV with a sniffed delimiter and a named text column, or
//! GLUE/CoLA-style TSV (`index<TAB>label<TAB>mark<TAB>text`, no header). Malformed rows are reported with
//! their line number.

use std::io::Read;
use std::path::Path;

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

/// Reads all of `path` (`-` for standard input) as [`read_text_file`] does.
pub fn read_source(path: &str) -> Result<String> {
    if path != "-" {
        return read_text_file(Path::new(path));
    }
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).context("reading standard input")?;
    Ok(unix_line_ends(decode_text(bytes, "standard input")))
}

/// Reads a text file as every reader here wants it: decoded as the page decodes files ([`decode_text`]),
/// line ends made `\n` ([`unix_line_ends`]).
pub fn read_text_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(unix_line_ends(decode_text(bytes, &path.display().to_string())))
}

/// Text file bytes decoded as the page decodes them (`decodeText` in `www/csv.js`): UTF-16 after a UTF-16
/// byte-order mark (Excel's "Unicode text"), else UTF-8 (a BOM dropped; valid UTF-8 is taken without a
/// copy), else Windows-1252, which decodes any byte, with a warning that names the first line that is
/// not UTF-8. One stray byte never refuses a whole file.
pub fn decode_text(bytes: Vec<u8>, origin: &str) -> String {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(&bytes) {
        return encoding.decode_without_bom_handling(&bytes[bom..]).0.into_owned();
    }
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let (valid, bytes) = (e.utf8_error().valid_up_to(), e.into_bytes());
            let line = bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
            tracing::warn!(
                "{origin}:{line}: not valid UTF-8 (byte 0x{:02x}): the file is read as Windows-1252, as the page reads it",
                bytes[valid]
            );
            encoding_rs::WINDOWS_1252.decode_without_bom_handling(&bytes).0.into_owned()
        }
    }
}

/// `text` with every line end (`\r\n`, or a bare `\r` as old Mac files and some exports write) made `\n`,
/// so that every reader here, and the line numbers it reports, sees the same lines.
pub fn unix_line_ends(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The rows of delimited `source` whose quoted field does not end as a field must, as `(first line, last
/// line)`, 1-based, the last `None` for a quote never closed: a quote that opens a field and is never
/// closed, or is closed on a later line and followed by more text before the delimiter. The csv crate reads such a quote leniently, as one field
/// up to the next quote or the end of the file, and so swallows the rows in between without a word; the
/// page's reader (`www/csv.js`) refuses them with the same rule. Line ends must be `\n`.
pub fn unterminated_quotes(source: &str, delimiter: u8) -> Vec<(u64, Option<u64>)> {
    let bytes = source.as_bytes();
    let (mut found, mut line, mut i, mut field_start) = (Vec::new(), 1u64, 0usize, true);
    while i < bytes.len() {
        let b = bytes[i];
        if field_start && b == b'"' {
            let (first, mut j, mut closed) = (line, i + 1, false);
            while j < bytes.len() {
                match bytes[j] {
                    b'"' if bytes.get(j + 1) == Some(&b'"') => j += 1,
                    b'"' => {
                        closed = true;
                        break;
                    }
                    b'\n' => line += 1,
                    _ => {}
                }
                j += 1;
            }
            let followed_by_text = bytes.get(j + 1).is_some_and(|&c| c != delimiter && c != b'\n');
            if !closed {
                found.push((first, None));
                break;
            }
            if line > first && followed_by_text {
                found.push((first, Some(line)));
            }
            (i, field_start) = (j + 1, false);
            continue;
        }
        field_start = b == delimiter || b == b'\n';
        line += (b == b'\n') as u64;
        i += 1;
    }
    found
}

/// The error for a row that [`unterminated_quotes`] found.
pub fn unterminated_quote_message(origin: &str, (first, last): (u64, Option<u64>)) -> String {
    let (lines, to) = match last {
        Some(last) => (format!("{first}-{last}"), format!("line {last}")),
        None => (first.to_string(), "the end of the file".to_string()),
    };
    format!(
        "{origin}:{lines}: unterminated quote: the quoted field that opens on line {first} runs to {to}, over \
         what should be rows (close the quote, or double it inside a quoted field)"
    )
}

/// Picks the delimiter that splits the header line into the most fields.
pub fn sniff_delimiter(header: &str) -> u8 {
    [b',', b';', b'\t'].into_iter().max_by_key(|d| header.bytes().filter(|b| b == d).count()).unwrap_or(b',')
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
                    n => bail!(
                        "{origin}:{}: expected 4 tab-separated fields (index, label, mark, text), found {n}",
                        i + 1
                    ),
                }
            })
            .collect(),
    }
}

fn csv_texts(source: &str, origin: &str, text_column: &str) -> Result<Vec<String>> {
    let header = source.lines().next().ok_or_else(|| anyhow!("{origin} is empty"))?;
    let delimiter = sniff_delimiter(header);
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(source.as_bytes());
    let headers = reader.headers().with_context(|| format!("{origin}: reading the header row"))?.clone();
    let column = headers.iter().position(|h| h.trim() == text_column).ok_or_else(|| {
        anyhow!(
            "{origin}: no column named {text_column:?} (columns: {})",
            headers.iter().collect::<Vec<_>>().join(", ")
        )
    })?;
    if let Some(&broken) = unterminated_quotes(source, delimiter).first() {
        bail!("{}", unterminated_quote_message(origin, broken));
    }
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
    fn unterminated_quotes_are_found_with_their_lines() {
        // A tweet may span lines inside quotes, and hold quotes that are not at a field's start.
        let fine = "id;text;label\n1;\"two\nlines; with ; semicolons\";bot\n2;say \"hi\" now;human\n3;\"a \"\"quoted\"\" word\";bot\n";
        assert_eq!(unterminated_quotes(fine, b';'), []);
        assert_eq!(texts(fine, "t.csv", InputFormat::Csv, "text").unwrap().len(), 3);
        // One stray quote, closed by a later one: the rows between are swallowed.
        let stray = "id;text;label\n1;\"oops;bot\n2;b;human\n3;c \" d;bot\n4;e;human\n";
        assert_eq!(unterminated_quotes(stray, b';'), [(2, Some(4))]);
        let err = texts(stray, "t.csv", InputFormat::Csv, "text").unwrap_err().to_string();
        assert!(err.contains("t.csv:2-4: unterminated quote"), "{err}");
        // Never closed: the field runs to the end of the file.
        let open = "id,text\n1,fine\n2,\"never closed\n3,lost\n";
        assert_eq!(unterminated_quotes(open, b','), [(3, None)]);
        let err = texts(open, "t.csv", InputFormat::Csv, "text").unwrap_err().to_string();
        assert!(err.contains("t.csv:3: unterminated quote") && err.contains("the end of the file"), "{err}");
    }

    #[test]
    fn files_decode_as_the_page_decodes_them() {
        assert_eq!(decode_text("caf\u{e9} \u{1f600}".into(), "x"), "caf\u{e9} \u{1f600}");
        assert_eq!(decode_text(b"\xef\xbb\xbfbom".to_vec(), "x"), "bom");
        let utf16le: Vec<u8> =
            [0xff, 0xfe].into_iter().chain("h\u{e9}".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(decode_text(utf16le, "x"), "h\u{e9}");
        let utf16be: Vec<u8> =
            [0xfe, 0xff].into_iter().chain("h\u{e9}".encode_utf16().flat_map(u16::to_be_bytes)).collect();
        assert_eq!(decode_text(utf16be, "x"), "h\u{e9}");
        // One Latin-1 byte in an otherwise ASCII file: every row survives, read as Windows-1252.
        assert_eq!(
            decode_text(b"first\ncaf\xe9 \x93quoted\x94\n".to_vec(), "x"),
            "first\ncaf\u{e9} \u{201c}quoted\u{201d}\n"
        );
    }

    #[test]
    fn bare_carriage_returns_end_lines() {
        let source = unix_line_ends("a\rb\r\nc\n".to_string());
        assert_eq!(texts(&source, "x", InputFormat::Lines, "").unwrap(), ["a", "b", "c"]);
        let tsv = unix_line_ends("0\t1\ta\tfirst\r1\t0\ta\tsecond\r".to_string());
        assert_eq!(texts(&tsv, "x", InputFormat::Tsv, "").unwrap(), ["first", "second"]);
    }

    #[test]
    fn lines_skip_blanks() {
        assert_eq!(texts("a\n\n  \nb\n", "x", InputFormat::Lines, "").unwrap(), ["a", "b"]);
    }
}
