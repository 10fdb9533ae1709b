// Account verdicts: on a timeline people judge accounts, and one tweet is weak evidence. The results of
// the tweets seen per author are kept (capped), and the verdict is the mean of their calibrated log-odds,
// or "uncertain" when that mean is near the boundary or the tweets disagree. The rule is the one the
// grouped cross-validation measures (`native-trainer/src/cv_report.rs`, `uncertain`), so the figures in
// the model card describe these verdicts.

/// A verdict is uncertain when the mean bot probability is between these.
export const UNCERTAIN_BELOW = 0.75;
/// From this many tweets on, a verdict is also uncertain when the share of them labelled bot is within
/// `DISAGREEMENT` (inclusive): fewer than 70 % agree.
export const AGREEMENT_FROM = 5;
export const DISAGREEMENT = [0.3, 0.7];
/// The most tweets kept per account (the newest), and the most accounts (the most recently seen).
export const TWEETS_PER_ACCOUNT = 50;
export const MAX_ACCOUNTS = 2000;

/// Calibrated log-odds of "bot" from a result's probabilities, kept finite.
export function logOdds(result) {
  const bot = Math.min(Math.max(result.probabilities.bot, 1e-6), 1 - 1e-6);
  return Math.log(bot / (1 - bot));
}

/// The verdict of a list of log-odds: `{ label: 'bot'|'human'|'uncertain', tweets, probability }`, where
/// `probability` is the mean's bot probability.
export function verdictOf(values) {
  const tweets = values.length;
  const mean = values.reduce((sum, z) => sum + z, 0) / Math.max(tweets, 1);
  const botShare = values.filter((z) => z > 0).length / Math.max(tweets, 1);
  const probability = 1 / (1 + Math.exp(-mean));
  const nearBoundary = probability > 1 - UNCERTAIN_BELOW && probability < UNCERTAIN_BELOW;
  const disagree = tweets >= AGREEMENT_FROM && botShare >= DISAGREEMENT[0] && botShare <= DISAGREEMENT[1];
  const label = nearBoundary || disagree ? 'uncertain' : mean > 0 ? 'bot' : 'human';
  return { label, tweets, probability };
}

/// The tweets seen per author: `add` one result, read an author's `verdict`; `toJSON`/`fromJSON` for
/// extension storage. A status is counted once, however often it scrolls past.
export class AccountStore {
  #accounts = new Map(); // author -> Map(statusId -> log-odds), in insertion order (oldest first)

  add(author, statusId, result) {
    const key = author.toLowerCase();
    const tweets = this.#accounts.get(key) ?? new Map();
    this.#accounts.delete(key); // re-inserted as the most recent
    tweets.delete(statusId);
    tweets.set(statusId, logOdds(result));
    while (tweets.size > TWEETS_PER_ACCOUNT) tweets.delete(tweets.keys().next().value);
    this.#accounts.set(key, tweets);
    while (this.#accounts.size > MAX_ACCOUNTS) this.#accounts.delete(this.#accounts.keys().next().value);
  }

  verdict(author) {
    const tweets = this.#accounts.get(author.toLowerCase());
    return tweets ? verdictOf([...tweets.values()]) : null;
  }

  get size() {
    return this.#accounts.size;
  }

  clear() {
    this.#accounts.clear();
  }

  toJSON() {
    return [...this.#accounts].map(([author, tweets]) => [author, [...tweets]]);
  }

  /// A store from `toJSON`'s output; anything malformed is dropped, not trusted.
  static fromJSON(data) {
    const store = new AccountStore();
    if (!Array.isArray(data)) return store;
    for (const entry of data.slice(-MAX_ACCOUNTS)) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !Array.isArray(entry[1])) continue;
      const tweets = new Map();
      for (const pair of entry[1].slice(-TWEETS_PER_ACCOUNT)) {
        if (Array.isArray(pair) && typeof pair[0] === 'string' && Number.isFinite(pair[1])) tweets.set(pair[0], pair[1]);
      }
      if (tweets.size) store.#accounts.set(entry[0].toLowerCase(), tweets);
    }
    return store;
  }
}
