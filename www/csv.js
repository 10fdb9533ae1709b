// csv.js: pure functions to read tweets from CSV/TSV/plain-text files and to write results as CSV.
// No DOM; used by the page (app.js), the benchmark (bench.js) and the node tests (tests/csv.test.mjs).
//
// Reading: delimiter sniffed among , ; \t | ; RFC 4180 quoting (delimiters, doubled quotes and newlines
// inside quoted fields); BOM stripped; CRLF, LF or CR line ends; bad rows (wrong number of fields,
// unterminated quote) reported with their 1-based line numbers and skipped; blank lines counted.
// Writing: RFC 4180 quoting and spreadsheet formula-injection neutralisation.

export const DELIMITERS = [',', ';', '\t', '|'];

/** Column names recognised as "the tweet" in a one-column file with a header. */
const TEXT_COLUMN_NAMES = ['text', 'tweet', 'tweets', 'content', 'message', 'body'];

const SNIFF_SAMPLE_CHARS = 64 * 1024;
const SNIFF_SAMPLE_RECORDS = 50;

/**
 * Decodes file bytes to text: UTF-16 when the file starts with a UTF-16 byte-order mark (Excel's
 * "Unicode text" export), else UTF-8, falling back to Windows-1252 when the bytes are not valid UTF-8.
 */
export function decodeText(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (b[0] === 0xff && b[1] === 0xfe) return new TextDecoder('utf-16le').decode(b);
  if (b[0] === 0xfe && b[1] === 0xff) return new TextDecoder('utf-16be').decode(b);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return new TextDecoder('windows-1252').decode(b);
  }
}

/**
 * Removes the byte-order marks at the start: all of them, so that stripping is idempotent (the parsers
 * below strip what they are given, and a file saved twice through a BOM-adding editor starts with two;
 * found by fuzzing: one kept mark made a line of its own, or none).
 */
export function stripBom(text) {
  return text.replace(/^\uFEFF+/, '');
}

function isLineEnd(c) {
  return c === '\n' || c === '\r';
}

/** Index just past the line break that ends the physical line containing `i` (or text.length). */
function nextLineStart(text, i) {
  while (i < text.length && !isLineEnd(text[i])) i++;
  if (text[i] === '\r' && text[i + 1] === '\n') return i + 2;
  return Math.min(i + 1, text.length);
}

/** True when the physical line starting at `i` holds only spaces/tabs; returns the next line start or -1. */
function blankLineEnd(text, i) {
  let j = i;
  while (j < text.length && (text[j] === ' ' || text[j] === '\t')) j++;
  if (j < text.length && !isLineEnd(text[j])) return -1;
  return nextLineStart(text, j);
}

/**
 * Splits text into records. `delimiter` null means one column (quoting still applies).
 * Returns {records: [{line, cells}], errors: [{line, message}], emptyLines}.
 * A record's `line` is the 1-based physical line where it starts.
 */
function scanRecords(text, delimiter, maxRecords = Infinity) {
  const records = [];
  const errors = [];
  let emptyLines = 0;
  let i = 0;
  let line = 1;
  const n = text.length;

  while (i < n && records.length + errors.length < maxRecords) {
    const blankEnd = blankLineEnd(text, i);
    if (blankEnd !== -1) {
      emptyLines++;
      i = blankEnd;
      line++;
      continue;
    }
    const startLine = line;
    const startIndex = i;
    const cells = [];
    let failed = null;

    for (;;) {
      let field;
      if (text[i] === '"') {
        // Quoted field: "" is a literal quote; delimiters and line breaks are data.
        let j = i + 1;
        const parts = [];
        let segmentStart = j;
        let closed = false;
        let spanned = false;
        let linesInside = 0;
        while (j < n) {
          const c = text[j];
          if (c === '"') {
            if (text[j + 1] === '"') {
              parts.push(text.slice(segmentStart, j + 1));
              j += 2;
              segmentStart = j;
              continue;
            }
            parts.push(text.slice(segmentStart, j));
            j++;
            closed = true;
            break;
          }
          if (c === '\n' || (c === '\r' && text[j + 1] !== '\n')) {
            linesInside++;
            spanned = true;
          }
          j++;
        }
        if (!closed) {
          failed = 'unterminated quote';
          break;
        }
        field = parts.join('');
        // After the closing quote: a delimiter, a line end or the end of the text.
        if (j < n && text[j] !== delimiter && !isLineEnd(text[j])) {
          if (spanned) {
            // A quote closed on a later line and followed by junk: the opening quote never ended.
            failed = 'unterminated quote';
            break;
          }
          // Lenient, like most readers: keep the stray characters (e.g. "abc"def -> abcdef).
          let k = j;
          while (k < n && text[k] !== delimiter && !isLineEnd(text[k])) k++;
          field += text.slice(j, k);
          j = k;
        }
        line += linesInside;
        i = j;
      } else {
        let j = i;
        while (j < n && text[j] !== delimiter && !isLineEnd(text[j])) j++;
        field = text.slice(i, j);
        i = j;
      }
      cells.push(field);
      if (i < n && text[i] === delimiter) {
        i++;
        if (i >= n) {
          cells.push('');
          break;
        }
        continue;
      }
      // End of record: consume the line break.
      if (i < n) {
        i = text[i] === '\r' && text[i + 1] === '\n' ? i + 2 : i + 1;
        line++;
      }
      break;
    }

    if (failed) {
      errors.push({ line: startLine, message: failed });
      // Resynchronise at the line after the one where the bad record started.
      i = nextLineStart(text, startIndex);
      line = startLine + 1;
      continue;
    }
    records.push({ line: startLine, cells });
  }
  return { records, errors, emptyLines };
}

/**
 * Guesses the delimiter among , ; \t | from the first records (quote-aware).
 * Returns null when no candidate splits the first record into 2+ fields consistently (plain lines).
 */
export function sniffDelimiter(text) {
  let sample = stripBom(text);
  const truncated = sample.length > SNIFF_SAMPLE_CHARS;
  if (truncated) sample = sample.slice(0, SNIFF_SAMPLE_CHARS);
  let best = null;
  let bestScore = 0;
  for (const delimiter of DELIMITERS) {
    const { records, errors } = scanRecords(sample, delimiter, SNIFF_SAMPLE_RECORDS);
    // The last record of a cut sample may be partial: leave it out.
    const usable = truncated && records.length > 1 ? records.slice(0, -1) : records;
    if (usable.length === 0) continue;
    const width = usable[0].cells.length;
    if (width < 2) continue;
    const consistent = usable.filter((r) => r.cells.length === width).length;
    const lateErrors = truncated ? Math.max(0, errors.length - 1) : errors.length;
    const score = consistent / (usable.length + lateErrors);
    if (score > bestScore) {
      best = delimiter;
      bestScore = score;
    }
  }
  return bestScore >= 0.6 ? best : null;
}

/** A header cell: short, name-like, not a sentence, a link or a mention. */
function isHeaderName(cell) {
  const name = cell.trim();
  if (name === '') return true; // e.g. the unnamed index column written by pandas
  if (name.length > 40 || /[@#]|:\/\//.test(name)) return false;
  if (!/^[\p{L}_][\p{L}\p{N}_.\- ()]*$/u.test(name)) return false;
  return name.split(/\s+/).length <= 4;
}

/**
 * True when the record looks like a header row: every cell name-like, at least one non-empty, unique, and
 * (given the records after it) no cell repeated as a value of its own column below, as a label is
 * (`hello world,bot` above rows labelled `bot` is data, not column names).
 */
export function looksLikeHeader(cells, laterRecords = []) {
  if (!cells.some((c) => c.trim() !== '')) return false;
  if (!cells.every(isHeaderName)) return false;
  const names = cells.map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
  if (new Set(names).size !== names.length) return false;
  const sample = laterRecords.slice(0, SNIFF_SAMPLE_RECORDS);
  return !cells.some((cell, i) => {
    const name = cell.trim().toLowerCase();
    return name !== '' && sample.some((r) => (r.cells[i] ?? '').trim().toLowerCase() === name);
  });
}

/**
 * Parses delimited text. Options: `delimiter` (one of DELIMITERS, or null for a single column; sniffed
 * when undefined), `header` (true, false or 'auto': 'auto' keeps the first record as header when it looks
 * like one). Returns {delimiter, header, rows: [{line, cells}], errors: [{line, message}], emptyLines}.
 * Rows whose field count differs from the header (or the first row) are errors, not rows.
 */
export function parseDelimited(text, { delimiter, header = 'auto' } = {}) {
  const body = stripBom(text);
  const used = delimiter === undefined ? sniffDelimiter(body) : delimiter;
  const { records, errors, emptyLines } = scanRecords(body, used);
  let headerCells = null;
  let dataRecords = records;
  if (records.length > 0 && (header === true || (header === 'auto' && looksLikeHeader(records[0].cells, records.slice(1))))) {
    headerCells = records[0].cells.map((c) => c.trim());
    dataRecords = records.slice(1);
  }
  const width = headerCells ? headerCells.length : dataRecords[0]?.cells.length ?? 0;
  const rows = [];
  const allErrors = [...errors];
  for (const record of dataRecords) {
    if (record.cells.length !== width) {
      allErrors.push({ line: record.line, message: `${record.cells.length} fields, expected ${width}` });
    } else {
      rows.push(record);
    }
  }
  allErrors.sort((a, b) => a.line - b.line);
  return { delimiter: used, header: headerCells, rows, errors: allErrors, emptyLines };
}

/** One tweet per line: every non-blank line is a row (no quoting, no header). */
export function parseLines(text) {
  const lines = stripBom(text).split(/\r\n|\n|\r/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop(); // final line break
  const rows = [];
  let emptyLines = 0;
  lines.forEach((content, i) => {
    if (content.trim() === '') emptyLines++;
    else rows.push({ line: i + 1, cells: [content] });
  });
  return { delimiter: null, header: null, rows, errors: [], emptyLines };
}

function extensionOf(fileName = '') {
  const match = /\.([^./\\]+)$/.exec(fileName.toLowerCase());
  return match ? match[1] : '';
}

/** Whether some column of the first rows repeats a few short values, as a label column does. */
function hasLabelColumn(rows) {
  const sample = rows.slice(0, SNIFF_SAMPLE_RECORDS);
  if (sample.length < 2) return false;
  const width = sample[0].cells.length;
  for (let i = 0; i < width; i++) {
    const values = sample.map((r) => (r.cells[i] ?? '').trim().toLowerCase());
    const distinct = new Set(values);
    if (values.every((v) => v !== '' && v.length <= 20) && distinct.size < values.length
      && distinct.size <= Math.max(2, sample.length / 4)) return true;
  }
  return false;
}

/** How an input file's rows are read: guessed, or as the user says. */
export const LAYOUTS = {
  auto: 'guess the layout',
  header: 'the first row names the columns',
  'no-header': 'every row is a tweet (no header row)',
  lines: 'one tweet per line (no columns)',
};

/** The first line's cells when it is a header naming a text column (e.g. `id,text`), split by `delimiter`. */
function textColumnHeader(body, delimiter) {
  const first = scanRecords(body, delimiter, 1).records[0];
  return first && first.cells.length > 1 && looksLikeHeader(first.cells)
    && first.cells.some((c) => TEXT_COLUMN_NAMES.includes(c.trim().toLowerCase()));
}

/**
 * Reads an input file the way the page does. `layout` (a key of LAYOUTS) says how; 'auto' guesses:
 * `.txt` is one tweet per line; `.tsv` is tab-delimited; anything else is sniffed. A sniffed file
 * without a recognisable header, or with one column (unless its header names a text column such as
 * `text`), is read as plain lines; a file whose rows do not split consistently but whose first line
 * names a text column (`id,text`) keeps that header, and its odd rows are reported as bad rows.
 * Returns parseDelimited's shape plus {kind: 'lines'|'delimited', columns, defaultColumn, layout,
 * assumed}: `assumed` says in a sentence what was taken for granted, so the page can show it.
 */
export function parseInputFile(text, fileName = '', layout = 'auto') {
  const ext = extensionOf(fileName);
  const body = stripBom(text);
  let parsed;
  if (layout === 'lines' || (layout === 'auto' && ext === 'txt')) {
    parsed = parseLines(body);
  } else if (layout !== 'auto') {
    const delimiter = ext === 'tsv' || ext === 'tab' ? '\t' : sniffDelimiter(body);
    parsed = parseDelimited(body, { delimiter, header: layout === 'header' });
  } else if (ext === 'tsv' || ext === 'tab') {
    parsed = parseDelimited(body, { delimiter: '\t' });
    if (!parsed.header) parsed = parseDelimited(body, { delimiter: '\t', header: false });
  } else {
    const delimiter = sniffDelimiter(body);
    if (delimiter === null) {
      const firstLine = body.split(/\r\n|\n|\r/, 1)[0].trim().replace(/^"(.*)"$/, '$1').toLowerCase();
      const named = DELIMITERS.find((d) => textColumnHeader(body, d));
      parsed = TEXT_COLUMN_NAMES.includes(firstLine) ? parseDelimited(body, { delimiter: null, header: true })
        : named ? parseDelimited(body, { delimiter: named, header: true })
          : parseLines(body);
    } else {
      parsed = parseDelimited(body, { delimiter });
      // No header: columns only when one of them holds labels (`tweet,bot`), else commas are prose.
      if (!parsed.header && !hasLabelColumn(parsed.rows)) parsed = parseLines(body);
    }
  }
  const kind = parsed.header || parsed.delimiter !== null ? 'delimited' : 'lines';
  const columns = columnsOf(parsed);
  const used = kind === 'lines' ? 'lines' : parsed.header ? 'header' : 'no-header';
  const assumed = {
    lines: 'Read as one tweet per line.',
    header: `The first row was read as column names (${(parsed.header ?? []).map((h) => `“${h}”`).join(', ')}), not as a tweet.`,
    'no-header': 'No header row: every row, the first included, is a tweet.',
  }[used];
  return { ...parsed, kind, columns, defaultColumn: defaultColumn(columns, parsed.header !== null), layout: used,
    assumed: layout === 'auto' ? `${assumed} (guessed; choose another layout if that is wrong)` : assumed };
}

/** Column names: the header, or "column 1", "column 2", ... */
export function columnsOf(parsed) {
  if (parsed.header) return parsed.header.map((name, i) => name || `column ${i + 1}`);
  const width = parsed.rows[0]?.cells.length ?? 1;
  return Array.from({ length: width }, (_, i) => `column ${i + 1}`);
}

/** Index of the default text column: `text` (case-insensitive) when the header has it, else 0. */
export function defaultColumn(columns, hasHeader = true) {
  if (!hasHeader) return 0;
  const i = columns.findIndex((c) => c.trim().toLowerCase() === 'text');
  return i === -1 ? 0 : i;
}

/**
 * Picks the tweets out of a parse result. `column` is an index or a header name (default: the default
 * column). Returns {texts, lines, emptyTexts}: `lines[i]` is the 1-based line of `texts[i]`; rows whose
 * text is blank are skipped and counted.
 */
export function extractTexts(parsed, column) {
  const columns = parsed.columns ?? columnsOf(parsed);
  let index = column ?? parsed.defaultColumn ?? defaultColumn(columns, parsed.header !== null);
  if (typeof index === 'string') {
    const byName = columns.findIndex((c) => c === index);
    if (byName === -1) throw new Error(`no column named "${index}"`);
    index = byName;
  }
  const texts = [];
  const lines = [];
  let emptyTexts = 0;
  for (const row of parsed.rows) {
    const text = row.cells[index] ?? '';
    if (text.trim() === '') {
      emptyTexts++;
    } else {
      texts.push(text);
      lines.push(row.line);
    }
  }
  return { texts, lines, emptyTexts };
}

/** Lines of a textarea: one tweet per line, blank lines skipped and counted. */
export function splitInputLines(text) {
  const { rows, emptyLines } = parseLines(text.replace(/^\uFEFF/, ''));
  // A trailing blank line is not reported: parseLines already drops the final line break.
  return { texts: rows.map((r) => r.cells[0]), lines: rows.map((r) => r.line), emptyLines };
}

const fmtCount = (n) => n.toLocaleString('en-US');

function plural(n, one, many) {
  return `${fmtCount(n)} ${n === 1 ? one : many}`;
}

/** Bad rows a skip report lists by line ("line 4 (3 fields, expected 4)"); the rest are counted. */
export const LISTED_BAD_ROWS = 10;

/**
 * Human-readable report of what was skipped, e.g.
 * "2 bad rows skipped: line 4 (3 fields, expected 4), line 9 (unterminated quote). 1 empty line skipped."
 * Empty string when nothing was skipped. At most `maxListed` bad rows are listed; `errorCount` is the
 * number of bad rows when `errors` holds only the first of them (default: all are there).
 */
export function formatSkipReport({ errors = [], errorCount = errors.length, emptyLines = 0, emptyTexts = 0 }, maxListed = LISTED_BAD_ROWS) {
  const parts = [];
  if (errorCount > 0) {
    const listed = errors.slice(0, maxListed).map((e) => `line ${e.line} (${e.message})`);
    const more = errorCount > listed.length ? ` and ${fmtCount(errorCount - listed.length)} more` : '';
    parts.push(`${plural(errorCount, 'bad row', 'bad rows')} skipped: ${listed.join(', ')}${more}.`);
  }
  if (emptyLines > 0) parts.push(`${plural(emptyLines, 'empty line', 'empty lines')} skipped.`);
  if (emptyTexts > 0) parts.push(`${plural(emptyTexts, 'row with empty text', 'rows with empty text')} skipped.`);
  return parts.join(' ');
}

// ---- Writing ----

/**
 * Neutralises spreadsheet formula injection: a cell starting with = + - @ tab or CR gets a leading '.
 * (This includes every tweet that opens with an @mention.)
 */
export function neutralizeCell(value) {
  const s = String(value);
  return /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}

/** RFC 4180: quote a cell holding a comma, a quote or a line break; double the quotes inside. */
export function quoteCell(s) {
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Always quoted, quotes doubled: the cell stays one cell whatever separator the reader assumes. */
export function quoteAlways(s) {
  return `"${s.replaceAll('"', '""')}"`;
}

/**
 * Rows (arrays of cells) to CSV text with CRLF line ends. Strings are neutralised and always quoted (a
 * spreadsheet set to `;` or tab as list separator would split an unquoted `x;=cmd|...` into a formula
 * cell); numbers and booleans are written as JS prints them; null/undefined as empty cells.
 */
export function toCsv(rows) {
  const cell = (value) => {
    if (value === null || value === undefined) return '';
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    return quoteAlways(neutralizeCell(value));
  };
  return rows.map((row) => row.map(cell).join(',')).join('\r\n') + (rows.length ? '\r\n' : '');
}

/**
 * Classification results to CSV: columns text,label,score,truncated then p_<label> for each label.
 * `items` are {text, label, score, truncated, probabilities}.
 */
export function resultsToCsv(items, labels) {
  const header = ['text', 'label', 'score', 'truncated', ...labels.map((l) => `p_${l}`)];
  const body = items.map((r) => [
    r.text,
    r.label,
    r.score,
    Boolean(r.truncated),
    ...labels.map((l) => r.probabilities?.[l] ?? null),
  ]);
  return toCsv([header, ...body]);
}
