// explain.js: word-occlusion explanations (pure functions, no DOM; used by worker.js and app.js).
// A tweet is re-scored with each word removed, all variants in one classify call; a word's delta is
// P(bot | full tweet) - P(bot | tweet without the word): positive = the word pushes toward bot,
// negative = toward human.

/** Words scored per tweet; later words are shown but not scored. */
export const MAX_EXPLAIN_WORDS = 64;

/**
 * Words an explanation reads and shows. The model reads at most 128 tokens and a word is at least one,
 * so later words never change a score; they are neither sent, copied per variant nor rendered.
 */
export const MAX_CONTEXT_WORDS = 256;
/** Characters of a tweet an explanation reads (the core also reads only a bounded prefix). */
export const MAX_CONTEXT_CHARS = 8192;

/** The first `max` UTF-16 units of `text`, never half a surrogate pair. */
function prefix(text, max) {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

/**
 * A tweet's whitespace-separated words as an explanation reads them (at most MAX_CONTEXT_WORDS of its
 * first MAX_CONTEXT_CHARS), and whether the tweet goes on past them.
 */
export function contextWords(text) {
  const head = prefix(text, MAX_CONTEXT_CHARS);
  const all = head.split(/\s+/u);
  const words = [];
  for (const w of all) {
    if (w === '') continue;
    if (words.length === MAX_CONTEXT_WORDS) return { words, clipped: true };
    words.push(w);
  }
  return { words, clipped: head.length < text.length };
}

/**
 * Texts to classify for an explanation: [full, without word 0, without word 1, ...] for the first
 * `max` words. The full text is the words joined by single spaces, so only the removed word differs.
 */
export function occlusionTexts(words, max = MAX_EXPLAIN_WORDS) {
  const scored = Math.min(words.length, max);
  const texts = [words.join(' ')];
  for (let i = 0; i < scored; i++) texts.push(words.filter((_, j) => j !== i).join(' '));
  return { texts, scored };
}

/** The label that means "bot": the first label containing "bot" (any case), else the last label. */
export function botLabelOf(labels) {
  return labels.find((l) => /bot/i.test(l)) ?? labels[labels.length - 1];
}

/** The label that means "human": the first label that is not the bot label. */
export function humanLabelOf(labels) {
  const bot = botLabelOf(labels);
  return labels.find((l) => l !== bot) ?? bot;
}

/**
 * Word deltas from the probabilities of the occlusion texts (results in occlusionTexts order).
 * Returns [{text, delta}] for every word; unscored words have delta null.
 */
export function occlusionDeltas(words, results, botLabel) {
  const full = results[0].probabilities[botLabel];
  return words.map((text, i) => {
    const variant = results[i + 1];
    return { text, delta: variant ? full - variant.probabilities[botLabel] : null };
  });
}

/** The k words with the largest effect each way: {bot: [{text, delta}], human: [...]}. */
export function strongestWords(words, k = 3, minDelta = 0.005) {
  const scored = words.filter((w) => w.delta !== null && Math.abs(w.delta) >= minDelta);
  const bot = scored.filter((w) => w.delta > 0).sort((a, b) => b.delta - a.delta).slice(0, k);
  const human = scored.filter((w) => w.delta < 0).sort((a, b) => a.delta - b.delta).slice(0, k);
  return { bot, human };
}
