// Unit tests for www/csv.js (run: node --test www/tests/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  sniffDelimiter, parseDelimited, parseLines, parseInputFile, extractTexts, splitInputLines,
  formatSkipReport, neutralizeCell, quoteCell, toCsv, resultsToCsv, looksLikeHeader, stripBom, decodeText, LAYOUTS,
} from '../csv.js';

const TWEEPFAKE = [
  'screen_name;text;account.type;class_type',
  'bot1;Hello, world; said the bot;bot;others', // 5 fields: bad row (line 2)
  'human1;"I love this, really; truly";human;human',
  'bot2;"She said ""hi"" to me";bot;gpt2',
  'human2;"line one',
  'line two";human;human',
  'bot3;plain text here;bot;rnn',
].join('\n');

test('sniffs the delimiter of real-looking files', () => {
  assert.equal(sniffDelimiter(TWEEPFAKE), ';');
  assert.equal(sniffDelimiter('id,text,label\n1,"a; b; c",bot\n2,hello,human\n'), ',');
  assert.equal(sniffDelimiter('id\ttext\n1\thello, world\n2\tbye; now\n'), '\t');
  assert.equal(sniffDelimiter('id|text\n1|hello, world\n2|bye\n'), '|');
});

test('plain tweets sniff as no delimiter', () => {
  const plain = [
    'Just finished my morning run, legs are jelly but worth it',
    'YEA now that note GOOD',
    'Can\'t believe the game last night!!! What a finish',
    'wish i can, i would, be seeing other things; on the worst part',
  ].join('\n');
  assert.equal(sniffDelimiter(plain), null);
});

test('TweepFake-style file: quoting, doubled quotes, newline in quotes, bad row', () => {
  const p = parseDelimited(TWEEPFAKE);
  assert.equal(p.delimiter, ';');
  assert.deepEqual(p.header, ['screen_name', 'text', 'account.type', 'class_type']);
  assert.deepEqual(p.rows.map((r) => r.line), [3, 4, 5, 7]);
  assert.equal(p.rows[0].cells[1], 'I love this, really; truly');
  assert.equal(p.rows[1].cells[1], 'She said "hi" to me');
  assert.equal(p.rows[2].cells[1], 'line one\nline two');
  assert.equal(p.rows[3].cells[1], 'plain text here');
  assert.deepEqual(p.errors, [{ line: 2, message: '5 fields, expected 4' }]);
});

test('BOM and CRLF are handled', () => {
  const text = '\uFEFFid,text\r\n1,"multi\r\nline"\r\n2,second\r\n';
  const p = parseDelimited(text);
  assert.deepEqual(p.header, ['id', 'text']);
  assert.deepEqual(p.rows, [
    { line: 2, cells: ['1', 'multi\r\nline'] },
    { line: 4, cells: ['2', 'second'] },
  ]);
  assert.equal(stripBom('\uFEFFx'), 'x');
});

test('unterminated quote at the end is reported and the rest kept', () => {
  const text = 'id,text,label\n1,ok,bot\n2,"never closed,bot\n3,fine,human\n';
  const p = parseDelimited(text, { delimiter: ',' });
  assert.deepEqual(p.errors, [{ line: 3, message: 'unterminated quote' }]);
  assert.deepEqual(p.rows.map((r) => r.cells[1]), ['ok', 'fine']);
});

test('unterminated quote that swallows a later quoted field is detected', () => {
  const text = 'id,text,label\n1,"broken,bot\n2,"quoted, fine",human\n3,last,bot\n';
  const p = parseDelimited(text, { delimiter: ',' });
  assert.deepEqual(p.errors, [{ line: 2, message: 'unterminated quote' }]);
  assert.deepEqual(p.rows.map((r) => r.line), [3, 4]);
  assert.equal(p.rows[0].cells[1], 'quoted, fine');
});

test('report names bad rows by line, as the page shows it', () => {
  const text = [
    'screen_name;text;account.type;class_type',
    'a;one;human;human',
    'b;two;bot;gpt2',
    'c;three;bot', // line 4: 3 fields
    'd;four;human;human',
    '',
    'e;five;bot;rnn',
    'f;six;human;human',
    'g;"seven;bot;rnn', // line 9: unterminated
  ].join('\n');
  const p = parseDelimited(text);
  assert.deepEqual(p.errors, [
    { line: 4, message: '3 fields, expected 4' },
    { line: 9, message: 'unterminated quote' },
  ]);
  assert.equal(p.emptyLines, 1);
  assert.equal(p.rows.length, 5);
  assert.equal(
    formatSkipReport(p),
    '2 bad rows skipped: line 4 (3 fields, expected 4), line 9 (unterminated quote). 1 empty line skipped.',
  );
  assert.equal(formatSkipReport({ errors: [], emptyLines: 0 }), '');
  assert.equal(formatSkipReport({ emptyLines: 3 }), '3 empty lines skipped.');
});

test('report lists at most N bad rows', () => {
  const errors = Array.from({ length: 12 }, (_, i) => ({ line: i + 2, message: 'unterminated quote' }));
  assert.match(formatSkipReport({ errors }, 2), /^12 bad rows skipped: line 2 \(unterminated quote\), line 3 \(unterminated quote\) and 10 more\.$/);
});

test('text column: default text, else first; by index or name', () => {
  const withText = parseInputFile('id,label,text\n1,bot,hello\n2,human,world\n', 'a.csv');
  assert.equal(withText.kind, 'delimited');
  assert.deepEqual(withText.columns, ['id', 'label', 'text']);
  assert.equal(withText.defaultColumn, 2);
  assert.deepEqual(extractTexts(withText).texts, ['hello', 'world']);
  assert.deepEqual(extractTexts(withText, 'label').texts, ['bot', 'human']);
  assert.deepEqual(extractTexts(withText, 0).texts, ['1', '2']);
  assert.deepEqual(extractTexts(withText).lines, [2, 3]);

  const noText = parseInputFile('tweet_body,class\nhello there,bot\n', 'b.csv');
  assert.equal(noText.defaultColumn, 0);
  assert.deepEqual(extractTexts(noText).texts, ['hello there']);
  assert.throws(() => extractTexts(noText, 'nope'), /no column named/);
});

test('TweepFake file through parseInputFile', () => {
  const p = parseInputFile(TWEEPFAKE, 'train.csv');
  assert.equal(p.delimiter, ';');
  assert.equal(p.columns[p.defaultColumn], 'text');
  const { texts } = extractTexts(p);
  assert.deepEqual(texts, ['I love this, really; truly', 'She said "hi" to me', 'line one\nline two', 'plain text here']);
});

test('empty text cells are skipped and counted', () => {
  const p = parseInputFile('id,text\n1,\n2,  \n3,hi\n', 'x.csv');
  assert.deepEqual(extractTexts(p), { texts: ['hi'], lines: [4], emptyTexts: 2 });
});

test('files without a recognisable header, or with one column, are plain lines', () => {
  const noHeader = parseInputFile('Great game tonight, what a finish!\nBuy now, limited offer, click here\n', 'x.csv');
  assert.equal(noHeader.kind, 'lines');
  assert.deepEqual(extractTexts(noHeader).texts, [
    'Great game tonight, what a finish!', 'Buy now, limited offer, click here',
  ]);
  const oneColumn = parseInputFile('hello world\nsecond tweet\n', 'y.csv');
  assert.equal(oneColumn.kind, 'lines');
  assert.deepEqual(extractTexts(oneColumn).texts, ['hello world', 'second tweet']);
});

test('a one-column file with a text header keeps RFC 4180 quoting', () => {
  const p = parseInputFile('text\n"first, with comma"\n"multi\nline"\nplain\n', 'z.csv');
  assert.equal(p.kind, 'delimited');
  assert.deepEqual(extractTexts(p).texts, ['first, with comma', 'multi\nline', 'plain']);
});

test('.txt is one tweet per line, quotes and delimiters kept literally', () => {
  const p = parseInputFile('id;text\n"quoted" tweet; with semicolon\n\n\nlast\n', 'tweets.txt');
  assert.equal(p.kind, 'lines');
  assert.deepEqual(extractTexts(p).texts, ['id;text', '"quoted" tweet; with semicolon', 'last']);
  assert.deepEqual(extractTexts(p).lines, [1, 2, 5]);
  assert.equal(p.emptyLines, 2);
});

test('.tsv is tab-delimited even without a header', () => {
  const p = parseInputFile('1\thello, world\n2\tbye\n', 'x.tsv');
  assert.equal(p.delimiter, '\t');
  assert.equal(p.header, null);
  assert.deepEqual(p.columns, ['column 1', 'column 2']);
  assert.deepEqual(extractTexts(p, 1).texts, ['hello, world', 'bye']);
});

test('textarea lines: blank and whitespace-only lines are skipped and counted', () => {
  assert.deepEqual(splitInputLines('a\n\n  \nb\r\nc\n'), { texts: ['a', 'b', 'c'], lines: [1, 4, 5], emptyLines: 2 });
  assert.deepEqual(splitInputLines(''), { texts: [], lines: [], emptyLines: 0 });
  assert.deepEqual(parseLines('x\ry').rows.map((r) => r.cells[0]), ['x', 'y']);
});

test('stray characters after a closing quote are kept (lenient)', () => {
  const p = parseDelimited('a,b\n"x"y,z\n', { delimiter: ',' });
  assert.deepEqual(p.rows[0].cells, ['xy', 'z']);
  assert.deepEqual(p.errors, []);
});

test('trailing delimiter gives an empty last field', () => {
  const p = parseDelimited('a;b\n1;\n', { delimiter: ';' });
  assert.deepEqual(p.rows[0].cells, ['1', '']);
});

test('header detection', () => {
  assert.ok(looksLikeHeader(['screen_name', 'text', 'account.type', 'class_type']));
  assert.ok(looksLikeHeader(['', 'text', 'label'])); // pandas index column
  assert.ok(!looksLikeHeader(['@someone hello there friend', 'bot']));
  assert.ok(!looksLikeHeader(['text', 'TEXT']));
  assert.ok(!looksLikeHeader(['', '']));
});

test('a name-like first row repeated as a label below is data, not a header', () => {
  assert.ok(!looksLikeHeader(['hello world', 'bot'], [{ cells: ['buy now', 'bot'] }]));
  const parsed = parseInputFile('hello world,bot\nbuy now cheap,bot\nlovely day,human\n', 'x.csv');
  assert.equal(parsed.header, null);
  assert.equal(parsed.kind, 'delimited');
  assert.deepEqual(extractTexts(parsed, parsed.defaultColumn).texts, ['hello world', 'buy now cheap', 'lovely day']);
  assert.match(parsed.assumed, /No header row: every row, the first included, is a tweet\. \(guessed/);
});

test('a header naming a text column is kept when the rows split unevenly, and odd rows are reported', () => {
  const parsed = parseInputFile('id,text\n1,hello, world\n2,ok\n3,a, b, c\n', 'x.csv');
  assert.deepEqual(parsed.header, ['id', 'text']);
  assert.deepEqual(extractTexts(parsed, parsed.defaultColumn).texts, ['ok']);
  assert.deepEqual(parsed.errors.map((e) => e.line), [2, 4]);
  assert.match(parsed.assumed, /column names \(“id”, “text”\)/);
});

test('the user can overrule the guessed layout', () => {
  const file = 'screen_name,text\na,first tweet\nb,second tweet\n';
  assert.deepEqual(Object.keys(LAYOUTS), ['auto', 'header', 'no-header', 'lines']);
  const guessed = parseInputFile(file, 'x.csv');
  assert.equal(guessed.layout, 'header');
  const noHeader = parseInputFile(file, 'x.csv', 'no-header');
  assert.deepEqual(extractTexts(noHeader, 1).texts, ['text', 'first tweet', 'second tweet']);
  assert.equal(noHeader.assumed, 'No header row: every row, the first included, is a tweet.');
  const lines = parseInputFile(file, 'x.csv', 'lines');
  assert.deepEqual(extractTexts(lines).texts, file.trim().split('\n'));
  const header = parseInputFile('hello world,bot\nbuy now cheap,bot\n', 'x.csv', 'header');
  assert.deepEqual(header.header, ['hello world', 'bot']);
});

test('formula injection is neutralised', () => {
  for (const s of ['=1+1', '+1', '-1', '@friend hi', '\tx', '\rx']) assert.equal(neutralizeCell(s), `'${s}`);
  for (const s of ['hello', ' =1', "'quoted", '']) assert.equal(neutralizeCell(s), s);
});

test('RFC 4180 quoting on export', () => {
  assert.equal(quoteCell('plain'), 'plain');
  assert.equal(quoteCell('a,b'), '"a,b"');
  assert.equal(quoteCell('say "hi"'), '"say ""hi"""');
  assert.equal(quoteCell('two\nlines'), '"two\nlines"');
  assert.equal(toCsv([['a', 1, true, null], ['=cmd', '-x,y', 0.25, false]]), "\"a\",1,true,\r\n\"'=cmd\",\"'-x,y\",0.25,false\r\n");
  // A reader with `;` (or tab) as list separator must not split a text cell into a formula cell.
  assert.equal(toCsv([["x;=cmd|' /C calc'!A0;", 'a\tb|c']]), "\"x;=cmd|' /C calc'!A0;\",\"a\tb|c\"\r\n");
  assert.equal(toCsv([]), '');
});

test('results export round-trips through the parser', () => {
  const items = [
    { text: '@friend happy birthday, "pal"!', label: 'human', score: 0.9123456789, truncated: false, probabilities: { human: 0.9123456789, bot: 0.0876543211 } },
    { text: 'line one\nline two', label: 'bot', score: 0.75, truncated: true, probabilities: { human: 0.25, bot: 0.75 } },
    { text: '<img src=x onerror=alert(1)>', label: 'bot', score: 0.5, truncated: false, probabilities: { human: 0.5, bot: 0.5 } },
  ];
  const csv = resultsToCsv(items, ['human', 'bot']);
  assert.ok(csv.startsWith('"text","label","score","truncated","p_human","p_bot"\r\n'));
  const p = parseDelimited(csv, { delimiter: ',' });
  assert.deepEqual(p.errors, []);
  assert.deepEqual(p.header, ['text', 'label', 'score', 'truncated', 'p_human', 'p_bot']);
  assert.deepEqual(p.rows.map((r) => r.cells), [
    ["'@friend happy birthday, \"pal\"!", 'human', '0.9123456789', 'false', '0.9123456789', '0.0876543211'],
    ['line one\nline two', 'bot', '0.75', 'true', '0.25', '0.75'],
    ['<img src=x onerror=alert(1)>', 'bot', '0.5', 'false', '0.5', '0.5'],
  ]);
});

test('a large file parses quickly', () => {
  const lines = ['id;text;label'];
  for (let i = 0; i < 20000; i++) lines.push(`${i};"tweet number ${i}, with ""quotes"" and; semicolons";bot`);
  const t0 = performance.now();
  const p = parseInputFile(lines.join('\r\n'), 'big.csv');
  const ms = performance.now() - t0;
  assert.equal(p.rows.length, 20000);
  assert.equal(extractTexts(p).texts[19999], 'tweet number 19999, with "quotes" and; semicolons');
  assert.ok(ms < 2000, `took ${ms} ms`);
});

test('decodes UTF-8, UTF-16 with BOM, and falls back to Windows-1252', () => {
  assert.equal(decodeText(new TextEncoder().encode('\uFEFFcafé 🎂')), 'café 🎂'); // BOM dropped
  const utf16 = new Uint8Array([0xff, 0xfe, 0x74, 0x00, 0x65, 0x00, 0x78, 0x00, 0x74, 0x00, 0x09, 0x00, 0x69, 0x00]);
  const text = decodeText(utf16);
  assert.equal(text, 'text\ti');
  assert.equal(decodeText(new Uint8Array([0x63, 0x61, 0x66, 0xe9])), 'café'); // Windows-1252 é
});
