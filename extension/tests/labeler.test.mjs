// The extension's labeler and account verdicts on the mock timeline, with a stand-in engine: every tweet
// gets its badge and data-tweetguard-* hooks, each status is classified once, a recycled cell never shows
// the previous tweet's label, badges are text only, and account verdicts follow the grouped
// cross-validation's rule (native-trainer/src/cv_report.rs: the same cases as its test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseHTML } from 'linkedom';
import { AccountStore, MAX_ACCOUNTS, TWEETS_PER_ACCOUNT, logOdds, verdictOf } from '../src/accounts.js';
import { BADGE_CLASS, Labeler } from '../src/labeler.js';

const load = (name) => parseHTML(readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8')).document;

// A stand-in for the engine: "bot" with 0.9 for texts mentioning AI-ish words, else "human" with 0.8.
function fakeEngine() {
  const calls = [];
  const classify = async (texts) => {
    calls.push(texts);
    return texts.map((text) => {
      const bot = /mars|eat|candle/i.test(text) ? 0.9 : 0.2;
      const label = bot >= 0.5 ? 'bot' : 'human';
      return { label, score: Math.max(bot, 1 - bot), probabilities: { human: 1 - bot, bot } };
    });
  };
  return { classify, calls };
}

test('every tweet gets its label, score and badge, each status classified once', async () => {
  const document = load('timeline.html');
  const engine = fakeEngine();
  const labeler = new Labeler({ classify: engine.classify });
  labeler.scan(document);
  labeler.scan(document); // a second pass before the results queues nothing twice
  await labeler.flush(document);
  assert.equal(engine.calls.flat().length, 8);
  const labelled = [...document.querySelectorAll('[data-tweetguard-label]')];
  assert.equal(labelled.length, 8);
  const dril = document.querySelector('[data-tweetguard-status="1200000000000000001"]');
  assert.equal(dril.dataset.tweetguardLabel, 'bot');
  assert.equal(dril.dataset.tweetguardScore, '0.9');
  assert.equal(dril.dataset.tweetguardAccountLabel, 'bot');
  assert.equal(dril.dataset.tweetguardAccountTweets, '1');
  const badge = dril.querySelector(`.${BADGE_CLASS}`);
  assert.equal(badge.textContent, 'tweetguard: bot 90 % · @dril: bot (1 tweet)');
  // The quoted tweet has its own badge inside the quote, and the quoting one keeps its own.
  const quote = document.querySelector('[data-tweetguard-status="1200000000000000006"]');
  assert.equal(quote.getAttribute('role'), 'link');
  assert.equal(quote.closest('article').dataset.tweetguardStatus, '1200000000000000005');
  assert.equal(quote.closest('article').querySelectorAll(`:scope > .${BADGE_CLASS}`).length, 1);
  // Scrolling back (another pass) draws from the cache: no new engine call, one badge per tweet.
  labeler.scan(document);
  await labeler.flush(document);
  assert.equal(engine.calls.length, 1);
  assert.equal(document.querySelectorAll(`.${BADGE_CLASS}`).length, 8);
});

test('a recycled cell drops the old label at once and gets the new tweet\'s', async () => {
  const document = load('timeline.html');
  const labeler = new Labeler({ classify: fakeEngine().classify });
  labeler.scan(document);
  await labeler.flush(document);
  const cell = document.querySelector('[data-tweetguard-status="1200000000000000001"]');
  assert.equal(cell.dataset.tweetguardLabel, 'bot');
  cell.querySelector('time').parentElement.setAttribute('href', '/jaden/status/1300000000000000001');
  cell.querySelector('[data-testid="tweetText"]').replaceChildren(document.createTextNode('just a normal day'));
  labeler.scan(document);
  assert.equal(cell.hasAttribute('data-tweetguard-label'), false, 'no label while the new tweet is classified');
  assert.equal(cell.querySelector(`.${BADGE_CLASS}`), null);
  await labeler.flush(document);
  assert.equal(cell.dataset.tweetguardStatus, '1300000000000000001');
  assert.equal(cell.dataset.tweetguardLabel, 'human');
  assert.equal(cell.querySelector(`.${BADGE_CLASS}`).textContent, 'tweetguard: human 80 % · @jaden: human (1 tweet)');
});

test('markup in a tweet never becomes markup in the badge or the page', async () => {
  const document = load('timeline.html');
  const labeler = new Labeler({ classify: fakeEngine().classify });
  labeler.scan(document);
  await labeler.flush(document);
  const article = document.querySelector('[data-tweetguard-status="1200000000000000008"]');
  assert.equal(article.querySelectorAll('img, script').length, 0);
  const badge = article.querySelector(`.${BADGE_CLASS}`);
  assert.equal(badge.childNodes.length, 1);
  assert.equal(badge.firstChild.nodeType, 3);
});

test('account verdicts: the cross-validation\'s uncertain rule, one count per status, capped and stored safely', () => {
  const z = (p) => logOdds({ probabilities: { bot: p, human: 1 - p } });
  const sigmoid = (v) => 1 / (1 + Math.exp(-v));
  // The cases of cv_report::tests::uncertain_when_the_mean_is_near_the_boundary_or_the_tweets_disagree.
  assert.equal(verdictOf([0.5]).label, 'uncertain');
  assert.equal(verdictOf([2.0]).label, 'bot');
  assert.equal(verdictOf([-3.0, -2.0, -4.0, -2.5, -3.5]).label, 'human');
  assert.equal(verdictOf([9, 9, 9, -1, -1]).label, 'uncertain');
  assert.equal(verdictOf([3, 3, 3, -1, -1, -1, -1, -1, -1, -1]).label, 'uncertain', 'a 3 in 10 split is inclusive');
  assert.ok(Math.abs(z(0.9) - Math.log(9)) < 1e-12 && Math.abs(sigmoid(z(0.9)) - 0.9) < 1e-12);

  const store = new AccountStore();
  const bot = { label: 'bot', score: 0.9, probabilities: { human: 0.1, bot: 0.9 } };
  store.add('Dril_GPT2', '1', bot);
  store.add('dril_gpt2', '1', bot); // the same status again
  store.add('dril_gpt2', '2', bot);
  assert.deepEqual({ ...store.verdict('DRIL_gpt2'), probability: undefined }, { label: 'bot', tweets: 2, probability: undefined });
  for (let i = 0; i < TWEETS_PER_ACCOUNT + 10; i++) store.add('many', String(i), bot);
  assert.equal(store.verdict('many').tweets, TWEETS_PER_ACCOUNT);
  for (let i = 0; i < MAX_ACCOUNTS + 5; i++) store.add(`a${i}`, '1', bot);
  assert.equal(store.size, MAX_ACCOUNTS);
  assert.equal(store.verdict('dril_gpt2'), null, 'the least recently seen accounts go first');

  const restored = AccountStore.fromJSON(JSON.parse(JSON.stringify(store)));
  assert.equal(restored.size, MAX_ACCOUNTS);
  assert.deepEqual(restored.verdict(`a${MAX_ACCOUNTS + 4}`), store.verdict(`a${MAX_ACCOUNTS + 4}`));
  for (const junk of [null, 7, 'x', [[1, 2]], [['a', [['s', 'NaN']]]], [['a', 'not tweets']]]) {
    assert.equal(AccountStore.fromJSON(junk).size, 0, JSON.stringify(junk));
  }
});
