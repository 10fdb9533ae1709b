//! Token ids from the Rust `tokenizers` build the product uses (pure-Rust regex engine, as in wasm) equal
//! those of the Python `tokenizers` wheel for the same `tokenizer.json`, on every validation tweet plus
//! hand-written tricky texts. The Python side runs live (`tests/python/token_ids.py`); nothing is committed.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use tweetguard::tokenize::BertTokenizer;

/// Hand-written cases: emoji and ZWJ sequences, URLs, mentions, hashtags, RTL, CJK, combining marks,
/// control and invisible characters, very long words and texts.
fn tricky_texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "",
        " ",
        "\t\r\n",
        "👨‍👩‍👧‍👦 family",
        "🏳️‍🌈 pride 🏴‍☠️ 🇩🇪🇫🇷 👍🏿👋🏼",
        "https://t.co/AbC123?x=1&y=%20 www.example.com",
        "@user_1 @UPPER #Hashtag #日本 #123",
        "mail me@example.com or @ me, @_x@y http:// https://t.co/a…b",
        "RT @a: b",
        "مرحبا 123 بالعالم",
        "עברית עם ניקוד: שָׁלוֹם",
        "中文字符和日本語のテキスト、한국어",
        "e\u{301}\u{302}\u{303} a\u{308} Z\u{336}a\u{337}",
        "nul\0byte\u{1}\u{7f}\u{9f}",
        "zero\u{200b}width\u{200c}join\u{200d}er\u{feff}",
        "soft\u{ad}hyphen",
        "ＦＵＬＬＷＩＤＴＨ ｶﾀｶﾅ",
        "ﬁ ligature ß ẞ",
        "\u{1F600}\u{1F64F}\u{1F680}\u{1FAE0}",
        "a\u{2028}b\u{2029}c\u{85}d",
        "\u{fffd}\u{fffe}\u{10ffff}",
        "Ǆ ǅ ǆ İstanbul ıi",
        "…—–“”‘’«»",
        "$100 €50 £20 ¥1000 ₿0.1",
        "<b>bold</b> &amp; &lt;",
        "I'm can't won't y'all",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    texts.push("antidisestablishmentarianism".repeat(40));
    texts.push("long tweet ".repeat(200));
    texts.push("😂".repeat(300));
    texts
}

fn python_ids(tokenizer: &std::path::Path, max_length: usize, texts: &[String]) -> Option<Vec<Vec<u32>>> {
    let mut child = Command::new("python3")
        .arg(root().join("tests/python/token_ids.py"))
        .arg(tokenizer)
        .arg(max_length.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(serde_json::to_string(texts).ok()?.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn check(name: &str, tokenizer_path: std::path::PathBuf) {
    check_bytes(name, &tokenizer_path, &read(&tokenizer_path));
}

/// `tokenizer` (the bytes at `tokenizer_path`) gives the Python wheel's ids on every validation tweet and
/// the tricky texts.
fn check_bytes(name: &str, tokenizer_path: &std::path::Path, tokenizer: &[u8]) {
    let Some(mut texts) = validation_texts() else {
        return skip_or_fail("../shared/data/tweepfake/validation.csv is not there");
    };
    let validation = texts.len();
    texts.extend(tricky_texts());
    let Some(want) = python_ids(tokenizer_path, 128, &texts) else {
        return skip_or_fail("python3 with the tokenizers wheel is not available (pip install tokenizers)");
    };
    let encoder = BertTokenizer::from_json(tokenizer, 128).unwrap();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let encodings = encoder.encode(&refs).unwrap();
    let mut truncated = 0;
    for ((text, enc), want) in texts.iter().zip(&encodings).zip(&want) {
        assert_eq!(enc.get_ids(), &want[..], "{name}: ids differ for {text:?}");
        truncated += usize::from(!enc.get_overflowing().is_empty());
    }
    assert!(validation >= 500, "only {validation} validation tweets");
    eprintln!(
        "{name}: ids equal on {validation} validation tweets and {} tricky texts ({truncated} truncated)",
        texts.len() - validation
    );
}

#[test]
fn tiny_tokenizer_matches_python() {
    check("tiny", fixture("tiny/tokenizer.json"));
}

#[test]
fn minilm_tokenizer_matches_python() {
    let Some(dir) = minilm_dir() else {
        return skip_or_fail("all-MiniLM-L6-v2 is not fetched (run scripts/fetch-minilm.sh)");
    };
    check("minilm", dir.join("tokenizer.json"));
}

/// Tweet normalisation (`tweetguard::tweet_text`) lives in `tokenizer.json`, so Python's `tokenizers`
/// (its Oniguruma regex engine) must read it as our pure-Rust build does, mentions, links and e-mail
/// addresses in the validation tweets included.
#[test]
fn tweet_normalisation_matches_python() {
    let shipped = root().join("models/tweetguard-minilm-l6/tokenizer.json");
    let normalized = tweetguard::tweet_text::with_tweet_normalization(&read(&shipped)).unwrap();
    let dir = tempfile_dir("tweet-normalisation");
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, &normalized).unwrap();
    check_bytes("tweet-normalised", &path, &normalized);
    let _ = std::fs::remove_dir_all(dir);
}

/// A fresh folder under the system's temporary directory, unique to this process.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tg-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn truncation_is_flagged_and_padding_is_ours() {
    let encoder = BertTokenizer::from_json(&read(fixture("tiny/tokenizer.json")), 16).unwrap();
    let batch = encoder.encode_batch(&["short", &"many words ".repeat(50)]).unwrap();
    assert_eq!(batch.seq_len, 16);
    assert_eq!(batch.truncated, [false, true]);
    let alone = encoder.encode_batch(&["short"]).unwrap();
    assert_eq!(alone.row_ids(0), batch.row_ids(0), "padding does not change a row's tokens");
    assert_eq!(batch.attention_mask[..16].iter().filter(|m| **m == 1).count(), alone.seq_len);
    assert!(batch.input_ids[alone.seq_len..16].iter().all(|id| *id == 0), "padded with [PAD] = 0");
    assert_eq!(batch.row_ids(1).len(), 16);
}
