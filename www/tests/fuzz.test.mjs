// Property-based fuzzing of the page's parsers of outside input (run: node --test www/tests/), with
// fast-check (package-lock.json; scripts/setup-tests.sh installs it). Each property runs FUZZ_RUNS inputs
// (default 300, seconds in CI; scripts/fuzz.sh runs the 1,000,000-input campaign), from a fixed seed
// unless FUZZ_SEED says otherwise. Inputs that once broke a property stay as `examples`, replayed first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseInputFile, parseDelimited, parseLines, extractTexts, toCsv, neutralizeCell, stripBom, LAYOUTS,
} from '../csv.js';
import { validateManifest, MAX_FILE_BYTES } from '../model-store.js';

const fc = await import('fast-check').then((m) => m.default).catch(() => null);
const missing = 'fast-check is not installed (scripts/setup-tests.sh)';
if (!fc && process.env.CI === 'true') throw new Error(missing);
const skip = fc ? false : `SKIPPED: ${missing}`;

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SEED = Number(process.env.FUZZ_SEED ?? 20261203);
const settings = (examples = []) => ({ numRuns: RUNS, seed: SEED, examples, endOnFailure: true });

/** Physical lines of a text, as the page counts them (a final line break ends the last line). */
function physicalLines(text) {
  const lines = text.split(/\r\n|\n|\r/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return text === '' ? [] : lines;
}

/** Text made of the characters CSV cares about, plus arbitrary Unicode (lone surrogates included). */
const csvText = () => fc && fc.oneof(
  fc.string({ unit: fc.constantFrom('a', 'b', ' ', ',', ';', '\t', '|', '"', '\n', '\r', '\r\n', 'text', 'bot', '=', '\uFEFF') }),
  fc.string({ unit: 'binary' }),
);
const fileName = () => fc && fc.constantFrom('', 'x.csv', 'x.tsv', 'x.txt', 'x.tab', 'X.CSV', 'noext');

test('any file: every record is a row or a reported error, at a line inside the file', { skip }, () => {
  fc.assert(fc.property(csvText(), fileName(), fc.constantFrom(...Object.keys(LAYOUTS)), (text, name, layout) => {
    const parsed = parseInputFile(text, name, layout);
    const lineCount = physicalLines(stripBom(text)).length;
    const located = [...parsed.rows.map((r) => r.line), ...parsed.errors.map((e) => e.line)];
    for (const line of located) assert.ok(Number.isInteger(line) && line >= 1 && line <= lineCount, `line ${line} of ${lineCount}`);
    assert.equal(new Set(located).size, located.length, 'two records start on one line');
    for (const e of parsed.errors) assert.ok(typeof e.message === 'string' && e.message !== '');
    if (!text.includes('"')) {
      // No quotes: no record spans lines, so each line is a row, an error, the header or an empty line.
      const header = parsed.header ? 1 : 0;
      assert.equal(parsed.rows.length + parsed.errors.length + header + parsed.emptyLines, lineCount, 'lines lost');
    }
    const texts = extractTexts(parsed);
    assert.equal(texts.texts.length + texts.emptyTexts, parsed.rows.length);
    assert.ok(typeof parsed.assumed === 'string' && parsed.assumed.length > 0);
  }), settings([['"', 'x.csv', 'auto'], ['\r\r\n', '', 'lines'], ['a,b\n"', '', 'header'], ['\uFEFF\uFEFF', '', 'lines']]));
});

test('plain lines: every non-blank line is a tweet, in order, unchanged', { skip }, () => {
  fc.assert(fc.property(csvText(), (text) => {
    const { rows, emptyLines } = parseLines(text);
    const lines = physicalLines(stripBom(text));
    assert.deepEqual(rows.map((r) => r.cells[0]), lines.filter((l) => l.trim() !== ''));
    assert.equal(rows.length + emptyLines, lines.length);
  }), settings());
});

test('what the page exports it reads back: cells survive quoting, separators and line breaks', { skip }, () => {
  const cell = fc && fc.oneof(csvText(), fc.string());
  const table = fc && fc.integer({ min: 1, max: 4 }).chain((width) => fc.array(fc.array(cell, { minLength: width, maxLength: width }), { minLength: 1, maxLength: 6 }));
  fc.assert(fc.property(table, (rows) => {
    const header = rows[0].map((_, i) => `c${i}`);
    const parsed = parseDelimited(toCsv([header, ...rows]), { delimiter: ',', header: true });
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual(parsed.header, header);
    assert.deepEqual(parsed.rows.map((r) => r.cells), rows.map((r) => r.map((c) => neutralizeCell(c))));
  }), settings([[[['"\r']]], [[['', '']]]]));
});

/** Manifests near the valid one, every field sometimes replaced by anything JSON can hold. */
const manifestLike = () => {
  const anything = fc.oneof(fc.jsonValue(), fc.double(), fc.constantFrom(Infinity, -Infinity, NaN, 1e999, -0, 2 ** 53));
  const path = fc.oneof(
    fc.constantFrom('config.json', 'tokenizer.json', 'model.int8.safetensors', 'MODEL_CARD.md', 'a/model.safetensors',
      '../app.js', '%2e%2e/app.js', '/etc/passwd', 'C:x', 'a\\b', '.hidden', 'a//b', 'x?.safetensors', 'a/./b', ''),
    fc.string({ unit: fc.constantFrom('a', '.', '/', '%', '\\', ':', '-', '_', '\u0000', '\u2215', '..') }),
  );
  const file = fc.record({
    path: fc.oneof(path, anything),
    bytes: fc.oneof(fc.nat(), fc.constantFrom(MAX_FILE_BYTES, MAX_FILE_BYTES + 1, 3e9, -1, 0.5), anything),
    sha256: fc.oneof(fc.constant('a'.repeat(64)), fc.stringMatching(/^[0-9a-fA-F]{0,66}$/), anything),
  }, { requiredKeys: [] });
  return fc.record({
    format_version: fc.oneof(fc.constant(1), anything),
    labels: fc.oneof(fc.constant(['human', 'bot']), fc.array(fc.oneof(fc.string(), anything)), anything),
    max_length: fc.oneof(fc.integer({ min: -2, max: 1024 }), anything),
    files: fc.oneof(fc.array(file, { maxLength: 6 }), anything),
    calibration: fc.oneof(fc.record({ temperature: fc.oneof(fc.double(), anything) }, { requiredKeys: [] }), anything),
  }, { requiredKeys: [] });
};

/** A manifest listing the three files, with `extra` JSON members (found by fuzzing: `1e999` parses as Infinity). */
function wholeManifest(extra) {
  const file = (path) => `{"path":"${path}","bytes":1,"sha256":"${'a'.repeat(64)}"}`;
  const files = ['config.json', 'tokenizer.json', 'model.int8.safetensors'].map(file).join(',');
  return JSON.parse(`{"format_version":1,"labels":["a","b"],"files":[${files}],${extra}}`);
}

test('manifest checks: refused with a manifest.json: error, or accepted with only safe, bounded entries', { skip }, () => {
  fc.assert(fc.property(fc.oneof(manifestLike(), fc.jsonValue()), (manifest) => {
    let checked;
    try {
      checked = validateManifest(manifest);
    } catch (e) {
      assert.ok(e instanceof Error && e.message.startsWith('manifest.json:'), String(e?.message ?? e));
      return;
    }
    const { entries, temperature, maxLength, labels } = checked;
    assert.ok(Number.isFinite(temperature) && temperature > 0, `temperature ${temperature}`);
    assert.ok(Number.isSafeInteger(maxLength) && maxLength >= 2, `max_length ${maxLength}`);
    assert.ok(labels.length >= 2 && labels.every((l) => typeof l === 'string' && l !== ''));
    for (const entry of Object.values(entries).filter(Boolean)) {
      assert.ok(entry.path.split('/').every((part) => /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(part)), entry.path);
      assert.ok(!entry.path.includes('..') || entry.path.split('/').every((p) => p !== '..'), entry.path);
      assert.ok(Number.isSafeInteger(entry.bytes) && entry.bytes >= 0 && entry.bytes <= MAX_FILE_BYTES, `${entry.bytes}`);
      assert.match(entry.sha256, /^[0-9a-fA-F]{64}$/);
    }
  }), settings([[wholeManifest('"calibration":{"temperature":1e999}')]]));
});
