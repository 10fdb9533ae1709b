// Labels the tweets on a page: reads them (`extract.js`), asks the engine about the ones it has no result
// for (in batches, each status once), keeps every result by status id and draws it on whatever element
// shows that status now. X recycles a timeline's cells for other tweets and React drops foreign nodes on
// re-render, so every pass re-applies results from the cache, and a cell whose status changed loses the
// old label before anything else: it never shows another tweet's verdict.
//
// Each labelled element carries a stable hook for tests and users' scripts: `data-tweetguard-label`
// (`bot`/`human`), `data-tweetguard-score` (that label's calibrated probability, as `predict` prints it),
// `data-tweetguard-account-label` (`bot`/`human`/`uncertain`) and `data-tweetguard-account-tweets`. The
// badge is built from text nodes only: nothing from a tweet is ever parsed as HTML.

import { tweetsIn } from './extract.js';
import { AccountStore } from './accounts.js';

const ATTRIBUTES = ['status', 'label', 'score', 'account-label', 'account-tweets'];
export const BADGE_CLASS = 'tweetguard-badge';
/// Tweets sent to the engine per request.
export const BATCH = 16;

const percent = (p) => `${Math.round(p * 100)} %`;

export class Labeler {
  /// `classify(texts)` resolves to one `{ label, score, probabilities }` per text (the engine's results).
  constructor({ classify, accounts = new AccountStore(), onAccountsChanged = () => {} }) {
    this.classify = classify;
    this.accounts = accounts;
    this.onAccountsChanged = onAccountsChanged;
    this.results = new Map(); // statusId -> result
    this.pending = new Map(); // statusId -> { author, text }
    this.inFlight = null;
  }

  /// One pass over `root`: clears recycled elements, draws cached results, queues the rest. Returns
  /// the tweets it saw.
  scan(root) {
    const tweets = tweetsIn(root);
    for (const tweet of tweets) {
      if (tweet.element.dataset.tweetguardStatus !== tweet.statusId) this.#clear(tweet.element);
      const result = this.results.get(tweet.statusId);
      if (result) this.#draw(tweet, result);
      else if (!this.pending.has(tweet.statusId)) this.pending.set(tweet.statusId, tweet);
    }
    return tweets;
  }

  /// Classifies what `scan` queued, a batch at a time, then draws the results on `root`. One run at a
  /// time: a call while one runs waits for it and then runs what was queued since.
  async flush(root) {
    while (this.inFlight) await this.inFlight;
    this.inFlight = this.#classifyPending().finally(() => {
      this.inFlight = null;
    });
    await this.inFlight;
    this.scan(root);
  }

  async #classifyPending() {
    let changed = false;
    while (this.pending.size) {
      const batch = [...this.pending.entries()].slice(0, BATCH);
      for (const [statusId] of batch) this.pending.delete(statusId);
      const results = await this.classify(batch.map(([, tweet]) => tweet.text));
      batch.forEach(([statusId, tweet], i) => {
        this.results.set(statusId, results[i]);
        this.accounts.add(tweet.author, statusId, results[i]);
      });
      changed = true;
    }
    if (changed) this.onAccountsChanged(this.accounts);
  }

  #clear(element) {
    for (const name of ATTRIBUTES) element.removeAttribute(`data-tweetguard-${name}`);
    for (const badge of element.querySelectorAll(`:scope > .${BADGE_CLASS}`)) badge.remove();
  }

  #draw(tweet, result) {
    const { element } = tweet;
    const account = this.accounts.verdict(tweet.author);
    element.dataset.tweetguardStatus = tweet.statusId;
    element.dataset.tweetguardLabel = result.label;
    element.dataset.tweetguardScore = String(result.score);
    if (account) {
      element.dataset.tweetguardAccountLabel = account.label;
      element.dataset.tweetguardAccountTweets = String(account.tweets);
    }
    const doc = element.ownerDocument;
    let badge = element.querySelector(`:scope > .${BADGE_CLASS}`);
    if (!badge) {
      badge = doc.createElement('span');
      badge.className = BADGE_CLASS;
      element.append(badge);
    }
    badge.dataset.label = result.label;
    const tweetPart = `${result.label} ${percent(result.score)}`;
    const accountPart = account
      ? ` · @${tweet.author}: ${account.label} (${account.tweets} ${account.tweets === 1 ? 'tweet' : 'tweets'})`
      : '';
    badge.replaceChildren(doc.createTextNode(`tweetguard: ${tweetPart}${accountPart}`));
    badge.title = 'Computed on this device by tweetguard; a single tweet is weak evidence about an account.';
  }
}
