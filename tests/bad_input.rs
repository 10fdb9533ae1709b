//! Bad input gives a clear error or a correct result, never a panic: odd texts, corrupt or truncated
//! weights, configs and tokenizers that do not match the weights.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::*;
use tweetguard::HeadInit;

fn tiny() -> tweetguard::Classifier {
    let (c, t, w) = tiny_bytes("tiny/model.int8.safetensors");
    load(&c, &t, &w, HeadInit::Require).unwrap()
}

fn load_err(config: &[u8], tokenizer: &[u8], weights: &[u8]) -> String {
    match load(config, tokenizer, weights, HeadInit::Require) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn odd_texts_classify() {
    let model = tiny();
    let huge = "x".repeat(100_000);
    let words = "word ".repeat(20_000);
    let texts = ["", "   ", "\n\t", huge.as_str(), words.as_str(), "\0\0\0", "\u{fffd}", "🏳️‍🌈"];
    let out = pollster::block_on(model.classify(&texts)).unwrap();
    assert_eq!(out.results.len(), texts.len());
    for (text, r) in texts.iter().zip(&out.results) {
        let sum: f32 = r.probabilities.values().sum();
        assert!((sum - 1.0).abs() < 1e-5 && r.score >= 0.5, "{:?}: {r:?}", &text[..text.len().min(10)]);
    }
    // 100,000 letters are one word ([UNK] for WordPiece) but more than the bounded prefix the tokenizer
    // reads, so it is flagged cut; 20,000 words are cut to the maximum length.
    assert!(out.results[3].truncated && out.results[4].truncated && !out.results[0].truncated);
    // An empty text is exactly "[CLS] [SEP]", the same as whitespace only.
    assert_eq!(out.results[0].logits, out.results[1].logits);
}

#[test]
fn huge_texts_are_cut_to_a_bounded_prefix_before_tokenizing() {
    let model = tiny();
    let encoder = model.tokenizer();
    let limit = encoder.max_length() * tweetguard::tokenize::PREFIX_BYTES_PER_TOKEN;
    let ids = |text: &str| {
        let encoding = &encoder.encode(&[text]).unwrap()[0];
        (encoding.get_ids().to_vec(), !encoding.get_overflowing().is_empty())
    };
    // A megabyte of words reads as its first kilobytes do: the same tokens, truncated.
    let (whole, short) = ("word ".repeat(200_000), "word ".repeat(400));
    assert!(short.len() < limit);
    assert_eq!(ids(&whole), ids(&short));
    assert_eq!(ids(&whole).0.len(), encoder.max_length());
    // Past the prefix nothing is read, and the text says it was cut.
    let late_words = format!("{}hello world", " ".repeat(limit));
    assert_eq!(ids(&late_words), (ids("").0, true));
    // The cut lands on a character boundary, whatever the characters' widths.
    for unit in ["é", "🏳️‍🌈", "a𝄞", "日本語"] {
        let text = format!("a{}", unit.repeat(limit / unit.len() + 3));
        let (tokens, truncated) = ids(&text);
        assert!(truncated && tokens.len() >= 2, "{unit}");
    }
}

#[test]
fn empty_batch_is_empty() {
    let out = pollster::block_on(tiny().classify::<&str>(&[])).unwrap();
    assert!(out.results.is_empty());
}

#[test]
fn results_do_not_depend_on_batching() {
    let (c, t, w) = tiny_bytes("tiny/model.safetensors");
    let texts: Vec<String> = (0..37).map(|i| format!("tweet number {i} {}", "more ".repeat(i % 9))).collect();
    let one = load(&c, &t, &w, HeadInit::Require).unwrap();
    let small = pollster::block_on(tweetguard::Classifier::load(
        tweetguard::ModelBytes { config: &c, tokenizer: &t, weights: (&w).into() },
        tweetguard::LoadOptions { batch_size: Some(5), ..Default::default() },
    ))
    .unwrap();
    let (a, b) = (logits(&one, &texts), logits(&small, &texts));
    let singles: Vec<Vec<f32>> = texts.iter().map(|t| logits(&one, std::slice::from_ref(t)).remove(0)).collect();
    assert_logits_close("batch 32 vs batch 5", &a, &b, 1e-5);
    assert_logits_close("batch 32 vs one at a time", &a, &singles, 1e-5);
}

#[test]
fn truncated_weights_are_rejected() {
    let (c, t, w) = tiny_bytes("tiny/model.int8.safetensors");
    for cut in [0, 4, 8, 100, w.len() / 2, w.len() - 1] {
        let err = load_err(&c, &t, &w[..cut]);
        assert!(err.contains("safetensors"), "cut at {cut}: {err}");
    }
}

/// Flips single bits all over the file: the loader must return an error or a model, never panic.
/// Flips in the header must be caught; flips in f32 data that make a value non-finite, or that make the
/// logits overflow, must be caught as errors; any other flip just changes the numbers slightly.
#[test]
fn bit_flips_never_panic() {
    let (c, t, w) = tiny_bytes("tiny/model.safetensors");
    let header = 8 + u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let (mut errors, mut loaded) = (0, 0);
    for i in 0..400 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let pos = if i % 2 == 0 { state as usize % header } else { state as usize % w.len() };
        let mut bad = w.clone();
        bad[pos] ^= 1 << (state >> 60 & 7);
        match std::panic::catch_unwind(|| {
            let model = load(&c, &t, &bad, HeadInit::Require)?;
            let out = pollster::block_on(model.classify(&["probe"]))?;
            Ok::<_, tweetguard::Error>(out.results[0].logits.clone())
        }) {
            Ok(Ok(l)) => {
                loaded += 1;
                assert!(l.iter().all(|v| v.is_finite()), "flip at {pos} gave non-finite logits");
            }
            Ok(Err(_)) => errors += 1,
            Err(_) => panic!("a bit flip at byte {pos} panicked"),
        }
    }
    eprintln!("400 bit flips: {errors} rejected, {loaded} loaded with finite logits");
    assert!(errors > 0);
}

#[test]
fn non_finite_weights_are_rejected() {
    let (c, t, w) = tiny_bytes("tiny/model.safetensors");
    let st = safetensors::SafeTensors::deserialize(&w).unwrap();
    let view = st.tensor("bert.pooler.dense.bias").unwrap();
    let offset = view.data().as_ptr() as usize - w.as_ptr() as usize;
    let mut bad = w.clone();
    bad[offset..offset + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = load_err(&c, &t, &bad);
    assert!(err.contains("pooler.dense.bias") && err.contains("non-finite"), "{err}");
}

/// Finite but huge values (found by fuzzing: a LayerNorm bias near 1e36) are refused at load, in f32
/// and as int8 scales, instead of loading a model whose every `classify` fails.
#[test]
fn out_of_range_weights_are_rejected() {
    for (file, tensor, value) in [
        ("tiny/model.safetensors", "bert.encoder.layer.0.output.LayerNorm.bias", 9.7e35f32),
        ("tiny/model.safetensors", "bert.pooler.dense.weight", -2e4),
        ("tiny/model.int8.safetensors", "bert.encoder.layer.1.intermediate.dense.weight.scale", 1e3),
    ] {
        let (c, t, w) = tiny_bytes(file);
        let st = safetensors::SafeTensors::deserialize(&w).unwrap();
        let offset = st.tensor(tensor).unwrap().data().as_ptr() as usize - w.as_ptr() as usize;
        let mut bad = w.clone();
        bad[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        let err = load_err(&c, &t, &bad);
        let name = tensor.trim_start_matches("bert.").trim_end_matches(".scale");
        assert!(err.contains(name) && err.contains("out-of-range"), "{file} {tensor}: {err}");
    }
}

/// A syntax error inside `decoder` made the tokenizers crate panic (found by fuzzing); it is an error.
#[test]
fn malformed_tokenizer_json_is_an_error_not_a_panic() {
    let (c, t, w) = tiny_bytes("tiny/model.int8.safetensors");
    let text = String::from_utf8(t).unwrap();
    let at = text.find("\"decoder\"").expect("the fixture has a decoder");
    let broken = format!("{}\"decoder\": {{\"type\": \"WordPiece\" \"prefix\": 1}}}}", &text[..at]);
    let err = load_err(&c, broken.as_bytes(), &w);
    assert!(err.contains("not valid JSON"), "{err}");
}

#[test]
fn config_that_disagrees_with_weights_is_rejected() {
    let (c, t, w) = tiny_bytes("tiny/model.int8.safetensors");
    let mut config: serde_json::Value = serde_json::from_slice(&c).unwrap();
    config["intermediate_size"] = 64.into();
    let err = load_err(&serde_json::to_vec(&config).unwrap(), &t, &w);
    assert!(err.contains("intermediate.dense") && err.contains("do not belong together"), "{err}");
    let mut config: serde_json::Value = serde_json::from_slice(&c).unwrap();
    config["num_hidden_layers"] = 3.into();
    let err = load_err(&serde_json::to_vec(&config).unwrap(), &t, &w);
    assert!(err.contains("encoder.layer.2") && err.contains("missing"), "{err}");
    config["num_hidden_layers"] = 2.into();
    config["num_attention_heads"] = 5.into();
    let err = load_err(&serde_json::to_vec(&config).unwrap(), &t, &w);
    assert!(err.contains("multiple of num_attention_heads"), "{err}");
    config["num_attention_heads"] = 4.into();
    config["hidden_size"] = 1_000_000_000u64.into();
    assert!(load_err(&serde_json::to_vec(&config).unwrap(), &t, &w).contains("hidden_size"));
    assert!(load_err(b"{not json", &t, &w).contains("config.json"));
}

/// Two `id2label` keys that parse to one index (`"0"` and `"00"` or `"+0"`) used to panic (a trap in
/// wasm); they are a config error.
#[test]
fn id2label_keys_naming_one_index_twice_are_rejected() {
    let (c, t, w) = tiny_bytes("tiny/model.int8.safetensors");
    for twin in ["00", "+0"] {
        let mut config: serde_json::Value = serde_json::from_slice(&c).unwrap();
        config["id2label"] = serde_json::json!({"0": "human", twin: "bot"});
        let err = load_err(&serde_json::to_vec(&config).unwrap(), &t, &w);
        assert!(err.contains("id2label names index 0 twice"), "{err}");
    }
}

#[test]
fn tokenizer_larger_than_embedding_table_is_rejected() {
    let (c, t, w) = tiny_bytes("tiny/model.int8.safetensors");
    let mut tokenizer: serde_json::Value = serde_json::from_slice(&t).unwrap();
    let vocab = tokenizer["model"]["vocab"].as_object_mut().unwrap();
    let n = vocab.len();
    for i in 0..50 {
        vocab.insert(format!("extra{i}"), (n + i).into());
    }
    let err = load_err(&c, &serde_json::to_vec(&tokenizer).unwrap(), &w);
    assert!(err.contains("embedding table"), "{err}");
    assert!(load_err(&c, b"{\"broken\": true}", &w).contains("tokenizer"));
}

#[test]
fn tokenizer_without_special_tokens_is_rejected() {
    let (c, t, w) = tiny_bytes("tiny/model.int8.safetensors");
    let mut tokenizer: serde_json::Value = serde_json::from_slice(&t).unwrap();
    tokenizer["post_processor"] = serde_json::Value::Null;
    let err = load_err(&c, &serde_json::to_vec(&tokenizer).unwrap(), &w);
    assert!(err.contains("[CLS]"), "{err}");
}

#[test]
fn unknown_weight_format_is_rejected() {
    let (c, t, _) = tiny_bytes("tiny/model.int8.safetensors");
    let metadata = std::collections::HashMap::from([("tweetguard_format".to_string(), "int4-v9".to_string())]);
    let bytes = safetensors::serialize(Vec::<(&str, safetensors::tensor::TensorView)>::new(), Some(metadata)).unwrap();
    assert!(load_err(&c, &t, &bytes).contains("int4-v9"));
}

#[test]
fn bad_options_are_rejected() {
    let (c, t, w) = tiny_bytes("tiny/model.int8.safetensors");
    let bytes = tweetguard::ModelBytes { config: &c, tokenizer: &t, weights: (&w).into() };
    let opts = |o: tweetguard::LoadOptions| {
        pollster::block_on(tweetguard::Classifier::load(bytes.clone(), o)).err().map(|e| e.to_string())
    };
    assert!(opts(tweetguard::LoadOptions { max_length: Some(4096), ..Default::default() })
        .unwrap()
        .contains("positions"));
    assert!(opts(tweetguard::LoadOptions { temperature: Some(0.0), ..Default::default() })
        .unwrap()
        .contains("temperature"));
    assert!(opts(tweetguard::LoadOptions { batch_size: Some(0), ..Default::default() })
        .unwrap()
        .contains("batch_size"));
    assert!("gpu".parse::<tweetguard::BackendChoice>().is_err());
}
