//! Numerical parity of the CPU backend with Hugging Face transformers (PyTorch), on the tiny fixture BERT
//! (always) and on all-MiniLM-L6-v2 with a fixed random head (when the model has been fetched; required in
//! CI). Goldens come from `tests/python/make_fixtures.py`; nothing here produced them.
//!
//! Tolerances (max |logit difference|):
//! - f32 vs PyTorch f32: 1e-4 (float summation order only).
//! - int8 vs the int8 reference semantics (PyTorch with the dequantized weights): 1e-4, same reason.
//! - int8 vs f32: the format's published budget, 0.05 + 2 % of |logit| (docs/weight-format.md).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::*;
use tweetguard::weights::quant;
use tweetguard::HeadInit;

const F32_TOL: f32 = 1e-4;
const INT8_REF_TOL: f32 = 1e-4;
/// Published int8 budget against the f32 model: |int8 - f32| <= 0.05 + 2 % of |f32 logit|
/// (docs/weight-format.md has the derivation).
const INT8_ATOL: f32 = 0.05;
const INT8_RTOL: f32 = 0.02;
/// Labels are compared only where the reference probability is this far from 0.5.
const DECISIVE_MARGIN: f32 = 0.05;

fn check_model(name: &str, classifier_f32: &tweetguard::Classifier, classifier_int8: &tweetguard::Classifier, golden_file: &str) {
    let goldens = goldens(golden_file);
    let Some(texts) = golden_texts(&goldens) else {
        return skip_or_fail(&format!("{golden_file} needs ../shared/data/tweepfake/validation.csv"));
    };
    for (g, t) in goldens.iter().zip(&texts) {
        let ids = classifier_f32.encoder().encode_batch(&[t.as_str()]).unwrap().row_ids(0);
        assert_eq!(ids, g.ids, "{name}: token ids differ for {t:?}");
    }
    let want_f32: Vec<Vec<f32>> = goldens.iter().map(|g| g.logits_f32.clone()).collect();
    let want_q: Vec<Vec<f32>> = goldens.iter().map(|g| g.logits_int8ref.clone()).collect();
    let got_f32 = logits(classifier_f32, &texts);
    let got_q = logits(classifier_int8, &texts);
    assert_logits_close(&format!("{name} {golden_file} f32 vs PyTorch"), &got_f32, &want_f32, F32_TOL);
    assert_logits_close(&format!("{name} {golden_file} int8 vs PyTorch int8 reference"), &got_q, &want_q, INT8_REF_TOL);
    assert_logits_within(&format!("{name} {golden_file} int8 vs PyTorch f32"), &got_q, &want_f32, INT8_ATOL, INT8_RTOL);
    let n = assert_decisive_labels_match(&format!("{name} f32"), &got_f32, &want_f32, DECISIVE_MARGIN);
    let m = assert_decisive_labels_match(&format!("{name} int8"), &got_q, &want_f32, DECISIVE_MARGIN);
    eprintln!("{name} {golden_file}: labels agree on {n} (f32) and {m} (int8) decisive rows of {}", texts.len());
}

#[test]
fn tiny_bert_matches_pytorch() {
    let (config, tokenizer, weights) = tiny_bytes("tiny/model.safetensors");
    let int8 = read(fixture("tiny/model.int8.safetensors"));
    let f32_model = load(&config, &tokenizer, &weights, HeadInit::Require).unwrap();
    let int8_model = load(&config, &tokenizer, &int8, HeadInit::Require).unwrap();
    assert_eq!(int8_model.info().dtype, "int8");
    check_model("tiny", &f32_model, &int8_model, "tiny_goldens.json");
    check_model("tiny", &f32_model, &int8_model, "tiny_validation_goldens.json");
}

/// The Rust quantizer writes the same tensors, byte for byte, as the numpy reference quantizer did.
#[test]
fn rust_quantizer_matches_numpy_reference_on_tiny_bert() {
    let rust = quant::quantize_safetensors(&read(fixture("tiny/model.safetensors"))).unwrap();
    assert_same_tensors(&rust, &read(fixture("tiny/model.int8.safetensors")));
}

pub fn assert_same_tensors(a: &[u8], b: &[u8]) {
    let a = safetensors::SafeTensors::deserialize(a).unwrap();
    let b = safetensors::SafeTensors::deserialize(b).unwrap();
    let mut names_a = a.names();
    let mut names_b = b.names();
    names_a.sort();
    names_b.sort();
    assert_eq!(names_a, names_b, "tensor names differ");
    for name in names_a {
        let (ta, tb) = (a.tensor(name).unwrap(), b.tensor(name).unwrap());
        assert_eq!((ta.dtype(), ta.shape()), (tb.dtype(), tb.shape()), "{name}: dtype/shape differ");
        if ta.data() != tb.data() {
            let i = ta.data().iter().zip(tb.data()).position(|(x, y)| x != y).unwrap();
            panic!("{name}: bytes differ first at byte {i}");
        }
    }
}

/// all-MiniLM-L6-v2 (bare `BertModel` names) plus the committed fixed random head.
fn minilm_with_head(dir: &std::path::Path) -> Vec<u8> {
    let base = read(dir.join("model.safetensors"));
    let head = read(fixture("minilm_head.safetensors"));
    let (base, head) = (safetensors::SafeTensors::deserialize(&base).unwrap(), safetensors::SafeTensors::deserialize(&head).unwrap());
    let tensors: Vec<_> = base.tensors().into_iter().chain(head.tensors()).collect();
    safetensors::serialize(tensors, None).unwrap()
}

fn minilm_config(dir: &std::path::Path) -> Vec<u8> {
    let mut config = tweetguard::BertConfig::from_json(&read(dir.join("config.json"))).unwrap();
    config.set_labels(&["human", "bot"]);
    config.to_json().into_bytes()
}

#[test]
fn minilm_matches_pytorch() {
    let Some(dir) = minilm_dir() else {
        return skip_or_fail("all-MiniLM-L6-v2 is not fetched (run scripts/fetch-minilm.sh)");
    };
    let (config, tokenizer) = (minilm_config(&dir), read(dir.join("tokenizer.json")));
    let weights = minilm_with_head(&dir);
    let int8 = quant::quantize_safetensors(&weights).unwrap();
    eprintln!("MiniLM weights: f32 {} bytes, int8 {} bytes", weights.len(), int8.len());
    let f32_model = load(&config, &tokenizer, &weights, HeadInit::Require).unwrap();
    let int8_model = load(&config, &tokenizer, &int8, HeadInit::Require).unwrap();
    check_model("minilm", &f32_model, &int8_model, "minilm_goldens.json");
    check_model("minilm", &f32_model, &int8_model, "minilm_validation_goldens.json");
}

/// On MiniLM, the Rust quantizer matches the numpy reference run live (needs python3 with numpy and
/// safetensors, which .ci/run installs).
#[test]
fn rust_quantizer_matches_numpy_reference_on_minilm() {
    let Some(dir) = minilm_dir() else {
        return skip_or_fail("all-MiniLM-L6-v2 is not fetched (run scripts/fetch-minilm.sh)");
    };
    let tmp = std::env::temp_dir().join(format!("tweetguard-minilm-{}.int8.safetensors", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(root().join("tests/python/int8_reference.py"))
        .arg(dir.join("model.safetensors"))
        .arg(&tmp)
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => return skip_or_fail(&format!("the numpy reference quantizer did not run ({other:?}): pip install numpy safetensors")),
    }
    let reference = read(&tmp);
    let _ = std::fs::remove_file(&tmp);
    let rust = quant::quantize_safetensors(&read(dir.join("model.safetensors"))).unwrap();
    assert_same_tensors(&rust, &reference);
}

/// A bare checkpoint loads only when a random head is asked for, and then says it is untrained.
#[test]
fn bare_checkpoint_needs_an_explicit_random_head() {
    let Some(dir) = minilm_dir() else {
        return skip_or_fail("all-MiniLM-L6-v2 is not fetched (run scripts/fetch-minilm.sh)");
    };
    let (config, tokenizer, weights) = (read(dir.join("config.json")), read(dir.join("tokenizer.json")), read(dir.join("model.safetensors")));
    let err = load(&config, &tokenizer, &weights, HeadInit::Require).err().expect("a bare checkpoint must not load silently");
    assert!(err.to_string().contains("classifier"), "{err}");
    let model = load(&config, &tokenizer, &weights, HeadInit::RandomIfMissing { seed: 7 }).unwrap();
    assert!(model.info().untrained_head);
    let again = load(&config, &tokenizer, &weights, HeadInit::RandomIfMissing { seed: 7 }).unwrap();
    let texts = vec!["same seed, same head".to_string()];
    assert_eq!(logits(&model, &texts), logits(&again, &texts));
}
