// Reads tweets out of x.com's (and twitter.com's) rendered timeline, as the model was trained on them:
// the text as the API gives it (emoji from their <img alt>, links as their t.co address rather than the
// shortened display text, mentions and hashtags as written), the author's handle and the status id. DOM
// only: nothing here classifies, stores or draws. The content script calls `tweetsIn(root)` on each pass.
//
// X's markup it relies on (2026): every tweet is an `article[data-testid="tweet"]`; its text is a
// `div[data-testid="tweetText"]`; its timestamp is a `<time>` inside the `a[href*="/status/"]` link to
// the tweet, whose path is `/{handle}/status/{id}`. A quoted tweet sits inside the quoting article, in a
// `div[role="link"]` of its own, with its own text and timestamp link: it is read as a separate tweet,
// never as part of the quoting one. "Show more" and other controls are outside the text element, and
// anything marked as a control inside it is skipped.

export const TWEET_SELECTOR = 'article[data-testid="tweet"]';
const TEXT_SELECTOR = '[data-testid="tweetText"]';
const QUOTE_SELECTOR = 'div[role="link"]';
// Controls X may render inside a tweet's text ("Show more", translation and expansion buttons).
const CONTROL_SELECTOR = 'button, [role="button"], [data-testid$="show-more-link"], [aria-hidden="true"]';
const STATUS_PATH = /^\/([A-Za-z0-9_]{1,15})\/status\/(\d{1,25})(?:\/|$)/;

/// The status link's path, from an anchor's `href` (relative, or absolute on x.com or twitter.com).
function statusOf(anchor) {
  const href = anchor.getAttribute('href') ?? '';
  let path = href;
  if (/^https?:/i.test(href)) {
    try {
      const url = new URL(href);
      if (!/(^|\.)(x|twitter)\.com$/i.test(url.hostname)) return null;
      path = url.pathname;
    } catch {
      return null;
    }
  }
  const match = STATUS_PATH.exec(path);
  return match ? { author: match[1], statusId: match[2] } : null;
}

/// Whether `node` lies inside a quoted tweet within `scope` (and not `scope` itself).
function insideQuote(node, scope) {
  for (let n = node.parentElement; n && n !== scope; n = n.parentElement) {
    if (n.matches(QUOTE_SELECTOR)) return true;
  }
  return false;
}

/// What an anchor contributes to the text: external links as their address (t.co), everything else
/// (mentions, hashtags, cashtags) as written.
function anchorText(anchor) {
  const href = anchor.getAttribute('href') ?? '';
  if (/^https?:\/\/t\.co\//i.test(href)) return href;
  if (/^https?:/i.test(href)) {
    try {
      const url = new URL(href);
      if (!/(^|\.)(x|twitter)\.com$/i.test(url.hostname)) return href;
    } catch {
      return href;
    }
  }
  return nodeText(anchor);
}

/// The text of a node as the API would give it: text nodes as they are, `<img alt>` (emoji), `<br>` as a
/// line break, anchors by `anchorText`, controls left out.
export function nodeText(node) {
  let out = '';
  for (const child of node.childNodes) {
    if (child.nodeType === 3) {
      out += child.nodeValue;
    } else if (child.nodeType === 1) {
      const tag = child.tagName.toLowerCase();
      if (child.matches(CONTROL_SELECTOR)) continue;
      if (tag === 'img') out += child.getAttribute('alt') ?? '';
      else if (tag === 'br') out += '\n';
      else if (tag === 'a') out += anchorText(child);
      else if (tag === 'script' || tag === 'style' || tag === 'template') continue;
      else out += nodeText(child);
    }
  }
  return out;
}

/// One tweet's text element, author and status within `scope` (an article, or a quoted tweet's block):
/// the first of each not inside a quote nested in `scope`.
function readTweet(scope) {
  const own = (node) => !insideQuote(node, scope);
  const text = [...scope.querySelectorAll(TEXT_SELECTOR)].find(own);
  const link = [...scope.querySelectorAll('a[href*="/status/"]')].find((a) => own(a) && a.querySelector('time') && statusOf(a));
  if (!text || !link) return null;
  const { author, statusId } = statusOf(link);
  return { statusId, author, text: nodeText(text).trim() };
}

/// Every tweet under `root` with a text: `{ element, statusId, author, text, quotedBy }`, in document
/// order. `element` is the article, or the quoted tweet's block; `quotedBy` is the quoting tweet's status
/// id for a quoted tweet, else null. Tweets without text (a photo alone) and without a status link (a
/// placeholder) are left out.
export function tweetsIn(root) {
  const tweets = [];
  for (const article of root.querySelectorAll(TWEET_SELECTOR)) {
    const main = readTweet(article);
    if (main) tweets.push({ element: article, ...main, quotedBy: null });
    for (const quote of article.querySelectorAll(QUOTE_SELECTOR)) {
      if (insideQuote(quote, article)) continue; // a quote of a quote is read by its own block's pass
      const quoted = readTweet(quote);
      if (quoted) tweets.push({ element: quote, ...quoted, quotedBy: main?.statusId ?? null });
    }
  }
  return tweets;
}
