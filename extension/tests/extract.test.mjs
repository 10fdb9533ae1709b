// The extension's tweet extraction on mock x.com snapshots (tests/fixtures/*.html, written by hand in the
// shape of x.com's 2026 markup): the text the model gets is the API's (emoji from <img alt>, links as
// their t.co address, mentions and hashtags as written), UI words are left out, quoted tweets are tweets
// of their own, and markup inside a tweet stays text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseHTML } from 'linkedom';
import { nodeText, tweetsIn } from '../src/extract.js';

const load = (name) => parseHTML(readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8')).document;
const plain = (tweets) => tweets.map(({ statusId, author, text, quotedBy }) => ({ statusId, author, text, quotedBy }));

test('a timeline gives every tweet with text, in order, as the API would', () => {
  const tweets = tweetsIn(load('timeline.html'));
  assert.deepEqual(plain(tweets), [
    { statusId: '1200000000000000001', author: 'dril', text: 'no one is to touch the big candle', quotedBy: null },
    { statusId: '1200000000000000002', author: 'dril_gpt2', text: 'im going to eat the 🍕 and nobody can stop me 😤', quotedBy: null },
    {
      statusId: '1200000000000000003',
      author: 'kevinhooke',
      text: 'New post on Java and AWS: https://t.co/AbCdEf1234 thanks @awscloud #serverless $AMZN',
      quotedBy: null,
    },
    {
      statusId: '1200000000000000004',
      author: 'realDonaldTrump',
      text: 'A very long statement about many things that goes on and on\nsecond line',
      quotedBy: null,
    },
    { statusId: '1200000000000000005', author: 'elonmusk', text: 'This is wild', quotedBy: null },
    { statusId: '1200000000000000006', author: 'DeepElonMusk', text: 'Mars is a state of mind', quotedBy: '1200000000000000005' },
    { statusId: '1200000000000000007', author: 'zawvrk', text: '@zawarbot you again', quotedBy: null },
    {
      statusId: '1200000000000000008',
      author: 'imranye',
      text: '<img src=x onerror="alert(1)"> & <script>steal()</script> is just text',
      quotedBy: null,
    },
  ]);
  // Each tweet points at the element its badge belongs to: the article, or the quoted tweet's block.
  assert.equal(tweets[4].element.tagName.toLowerCase(), 'article');
  assert.equal(tweets[5].element.getAttribute('role'), 'link');
  assert.ok(tweets[4].element.contains(tweets[5].element));
});

test('a single tweet page: absolute status links on x.com and twitter.com count, look-alike hosts do not', () => {
  assert.deepEqual(plain(tweetsIn(load('single-tweet.html'))), [
    { statusId: '1200000000000000010', author: 'VitalikButerin', text: 'Proof of stake ❤️ sharding', quotedBy: null },
    { statusId: '1200000000000000011', author: 'VBoterin', text: 'proof of steak', quotedBy: null },
  ]);
});

test('a recycled cell is read as the tweet it holds now', () => {
  const document = load('timeline.html');
  const [first] = tweetsIn(document);
  first.element.querySelector('time').parentElement.setAttribute('href', '/jaden/status/1300000000000000001');
  first.element.querySelector('[data-testid="tweetText"]').replaceChildren(document.createTextNode('new tweet in an old cell'));
  const [again] = tweetsIn(document);
  assert.deepEqual(plain([again]), [{ statusId: '1300000000000000001', author: 'jaden', text: 'new tweet in an old cell', quotedBy: null }]);
});

test('controls inside the text and non-text elements are left out; line breaks are kept', () => {
  const { document } = parseHTML(
    '<div id="t">one<br>two <button>Translate post</button><span role="button">Show more</span>'
      + '<span aria-hidden="true">hidden</span><script>x()</script> three</div>',
  );
  assert.equal(nodeText(document.getElementById('t')), 'one\ntwo  three');
});
