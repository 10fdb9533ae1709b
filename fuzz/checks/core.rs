//! What the core's parsers of outside bytes must do with any input, checked by the fuzz targets
//! (`fuzz/fuzz_targets/`, libFuzzer on nightly) and replayed over the saved corpus on stable by
//! `tests/fuzz_corpus.rs`. Each check takes arbitrary bytes and panics only when an invariant breaks: a
//! parser may refuse its input with an error, but never panic, hang or allocate without bound, and what it
//! accepts must be usable.

use tweetguard::manifest::Manifest;
use tweetguard::tokenize::BertTokenizer;
use tweetguard::{BackendChoice, BertConfig, Classifier, LoadOptions, ModelBytes};

use std::sync::OnceLock;

/// The tokenizer of the tests' tiny BERT (1,000 words): what fuzzed texts are tokenized with.
const TINY_TOKENIZER: &[u8] = include_bytes!("../../tests/fixtures/tiny/tokenizer.json");
/// The micro BERT of `fuzz/make_micro.py` (1 layer, 40 words): the config and tokenizer that fuzzed
/// weights are loaded with, small enough to load thousands of times a second.
const MICRO_CONFIG: &[u8] = include_bytes!("../micro/config.json");
const MICRO_TOKENIZER: &[u8] = include_bytes!("../micro/tokenizer.json");
/// A short maximum length, so that fuzzed texts reach truncation.
const MAX_LENGTH: usize = 16;

/// `config.json`: an accepted config is consistent (labels dense, heads divide the width) and reads back
/// as itself.
pub fn config(data: &[u8]) {
    let Ok(config) = BertConfig::from_json(data) else { return };
    let labels = config.labels().expect("an accepted config has labels");
    assert!(labels.len() >= 2, "{labels:?}");
    assert_eq!(config.hidden_size % config.num_attention_heads, 0);
    let written = config.to_json();
    let again = BertConfig::from_json(written.as_bytes()).expect("a written config reads back");
    assert_eq!(again.to_json(), written, "config round trip");
}

/// `manifest.json`: an accepted manifest has a usable temperature, and checking a file against it
/// answers (the file is the one listed, or an error names why).
pub fn manifest(data: &[u8]) {
    let Ok(manifest) = Manifest::parse(data) else { return };
    if let Some(t) = manifest.temperature() {
        assert!(t.is_finite() && t > 0.0, "temperature {t}");
    }
    for file in manifest.files.iter().take(4) {
        let verdict = manifest.verify(&file.path, data);
        if verdict.is_ok() {
            assert_eq!(file.bytes, data.len() as u64);
        }
    }
    assert!(manifest.verify("\u{0}not listed", b"").is_err());
}

/// `tokenizer.json`: loading any bytes answers; an accepted tokenizer encodes a text with special tokens
/// within the maximum length.
pub fn tokenizer_json(data: &[u8]) {
    let Ok(tokenizer) = BertTokenizer::from_json(data, MAX_LENGTH) else { return };
    if let Ok(encodings) = tokenizer.encode(&["hello world, a tweet"]) {
        let ids = encodings[0].get_ids();
        assert!(!ids.is_empty() && ids.len() <= MAX_LENGTH, "{ids:?}");
    }
}

/// Tokenizing any text (the bytes read as UTF-8, invalid sequences replaced) with the tiny model's
/// tokenizer: `[CLS] ... [SEP]` within the maximum length, ids inside the vocabulary, truncation flagged
/// exactly when tokens were cut, and a batch padded consistently.
pub fn tokenize(data: &[u8]) {
    static TOKENIZER: OnceLock<BertTokenizer> = OnceLock::new();
    let tokenizer = TOKENIZER
        .get_or_init(|| BertTokenizer::from_json(TINY_TOKENIZER, MAX_LENGTH).expect("the fixture's tokenizer"));
    let text = String::from_utf8_lossy(data);
    let encodings = tokenizer.encode(&[text.as_ref()]).expect("any text encodes");
    let ids = encodings[0].get_ids();
    assert!(ids.len() >= 2 && ids.len() <= MAX_LENGTH, "{} ids", ids.len());
    let max_id = tokenizer.max_token_id();
    assert!(ids.iter().all(|&id| id <= max_id), "ids {ids:?} beyond {max_id}");
    let batch = tokenizer.encode_batch(&[text.as_ref(), "short"]).expect("any texts encode");
    assert_eq!(batch.input_ids.len(), 2 * batch.seq_len);
    assert_eq!(batch.row_ids(0), ids, "a batch pads without changing a row");
    assert_eq!(batch.truncated[0], !encodings[0].get_overflowing().is_empty());
}

/// Weights (`model.int8.safetensors` or a float `model.safetensors`) with the micro config and tokenizer:
/// loading any bytes answers, on the int8 engine where they are int8; a model that loads classifies a
/// text into probabilities.
pub fn weights(data: &[u8]) {
    let bytes = ModelBytes { config: MICRO_CONFIG, tokenizer: MICRO_TOKENIZER, weights: data.into() };
    let options = LoadOptions { backend: BackendChoice::Cpu, max_length: Some(MAX_LENGTH), ..LoadOptions::default() };
    let Ok(classifier) = pollster::block_on(Classifier::load(bytes, options)) else { return };
    let out = pollster::block_on(classifier.classify(&["a tweet", ""])).expect("a loaded model classifies");
    for p in &out.results {
        assert!(p.score.is_finite() && (0.0..=1.0).contains(&p.score), "score {}", p.score);
        let total: f32 = p.probabilities.values().sum();
        assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
    }
}
