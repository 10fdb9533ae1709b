//! Tweet normalisation: `@mentions` become `@user` and links become `http` before tokenizing, as tweet
//! models such as BERTweet do, so a model learns how an account writes rather than whom it names or links.
//! The rule is written into the model's own `tokenizer.json` (as `Replace` normalizers ahead of its
//! `BertNormalizer`), so every reader of the model folder applies it the same way: the core natively and
//! in the browser, the extension, and Hugging Face `tokenizers` in Python. A model trained without it has
//! a tokenizer without it and reads text as before.

use crate::error::{Error, Result};

/// A mention: `@` and a handle (letters, digits, underscore), not inside a word (so `me@example.com` stays).
pub const MENTION_PATTERN: &str = r"\B@[A-Za-z0-9_]+";
/// What a mention becomes.
pub const MENTION_PLACEHOLDER: &str = "@user";
/// A link: `http://` or `https://` and everything up to the next whitespace.
pub const LINK_PATTERN: &str = r"https?://\S+";
/// What a link becomes.
pub const LINK_PLACEHOLDER: &str = "http";

fn rules() -> [serde_json::Value; 2] {
    [(MENTION_PATTERN, MENTION_PLACEHOLDER), (LINK_PATTERN, LINK_PLACEHOLDER)].map(
        |(pattern, content)| serde_json::json!({"type": "Replace", "pattern": {"Regex": pattern}, "content": content}),
    )
}

/// Whether a `tokenizer.json` normalises tweets already.
pub fn normalizes_tweets(tokenizer_json: &[u8]) -> Result<bool> {
    let document: serde_json::Value = serde_json::from_slice(tokenizer_json)
        .map_err(|e| Error::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
    let [mention, _] = rules();
    let normalizer = &document["normalizer"];
    Ok(normalizer["normalizers"].as_array().is_some_and(|steps| steps.first() == Some(&mention)))
}

/// `tokenizer_json` with tweet normalisation ahead of its own normalizer (none, one, or a `Sequence`);
/// unchanged when it has it already.
pub fn with_tweet_normalization(tokenizer_json: &[u8]) -> Result<Vec<u8>> {
    if normalizes_tweets(tokenizer_json)? {
        return Ok(tokenizer_json.to_vec());
    }
    let mut document: serde_json::Value = serde_json::from_slice(tokenizer_json)
        .map_err(|e| Error::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
    let Some(object) = document.as_object_mut() else {
        return Err(Error::Tokenizer("tokenizer.json is not a JSON object".into()));
    };
    let mut steps: Vec<serde_json::Value> = rules().into();
    match object.remove("normalizer") {
        None | Some(serde_json::Value::Null) => {}
        Some(existing) if existing["type"] == "Sequence" => {
            steps.extend(existing["normalizers"].as_array().cloned().unwrap_or_default());
        }
        Some(existing) => steps.push(existing),
    }
    object.insert("normalizer".into(), serde_json::json!({"type": "Sequence", "normalizers": steps}));
    serde_json::to_vec(&document).map_err(|e| Error::Tokenizer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::BertTokenizer;

    /// The shipped model's tokenizer: BERT's uncased WordPiece vocabulary, which has `user` and `http`.
    fn bert_uncased() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/tweetguard-minilm-l6/tokenizer.json")).unwrap()
    }

    fn ids(tokenizer: &[u8], text: &str) -> Vec<u32> {
        BertTokenizer::from_json(tokenizer, 64).unwrap().encode(&[text]).unwrap()[0].get_ids().to_vec()
    }

    #[test]
    fn mentions_and_links_read_as_their_placeholders() {
        let plain = bert_uncased();
        let normalized = with_tweet_normalization(&plain).unwrap();
        assert!(normalizes_tweets(&normalized).unwrap() && !normalizes_tweets(&plain).unwrap());
        let cases = [
            ("thanks @Dril_2 see https://t.co/xYz1?a=b ok", "thanks @user see http ok"),
            ("@a @b_c: http://x.y", "@user @user: http"),
            ("RT @Elon, on https://t.co/q\u{2026}", "RT @user, on http"),
        ];
        for (text, expected) in cases {
            assert_eq!(ids(&normalized, text), ids(&plain, expected), "{text:?}");
            assert_ne!(
                ids(&plain, text),
                ids(&plain, expected),
                "{text:?} differs from its placeholders without the rule"
            );
        }
        // Inside a word, or without a scheme, nothing changes; a plain text reads as before.
        for text in ["mail me@example.com", "see t.co/abc", "no handles here", "", "@"] {
            assert_eq!(ids(&normalized, text), ids(&plain, text), "{text:?}");
        }
        // The model's own normalizer (lower-casing) still runs after the rule.
        assert_eq!(ids(&normalized, "HELLO @X"), ids(&plain, "hello @user"));
    }

    #[test]
    fn adding_it_twice_changes_nothing_and_bad_json_is_an_error() {
        let once = with_tweet_normalization(&bert_uncased()).unwrap();
        assert_eq!(with_tweet_normalization(&once).unwrap(), once);
        assert!(with_tweet_normalization(b"{not json").is_err());
        assert!(with_tweet_normalization(b"[1]").is_err());
        // No normalizer at all: the rule becomes the only one.
        let bare = serde_json::json!({"normalizer": null});
        let added: serde_json::Value =
            serde_json::from_slice(&with_tweet_normalization(&serde_json::to_vec(&bare).unwrap()).unwrap()).unwrap();
        assert_eq!(added["normalizer"]["normalizers"].as_array().unwrap().len(), 2);
    }
}
