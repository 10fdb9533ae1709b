//! Numerical parity of the CPU backend with Hugging Face transformers (PyTorch), on the tiny fixture BERT
//! (always) and on all-MiniLM-L6-v2 with a fixed random head (when the model has been fetched; required in
//! CI). Goldens come from `tests/python/make_fixtures.py`; nothing here produced them.
//!
//! Tolerances (`tweetguard::tolerance`, derived in docs/weight-format.md):
//! - f32 vs PyTorch f32, and the int8 reference semantics (candle with the dequantized weights) vs
//!   PyTorch with the dequantized weights: `FLOAT` (float summation order only).
//! - the int8 reference vs f32: the format's published budget, `INT8_WEIGHTS`.
//! - the int8 engine (what the browser runs) vs the int8 reference: `INT8_COMPUTE`; labels equal
//!   wherever the reference is decisive.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::*;
use tweetguard::backend::CpuEngine;
use tweetguard::tolerance::{DECISIVE_MARGIN, FLOAT, INT8_COMPUTE, INT8_WEIGHTS};
use tweetguard::weights::quant;
use tweetguard::{Classifier, HeadInit};

/// The model on the f32 reference, the int8 file on the reference semantics, and the int8 file on the
/// int8 engine.
struct Models {
    f32: Classifier,
    int8_reference: Classifier,
    int8_engine: Classifier,
}

impl Models {
    fn load(config: &[u8], tokenizer: &[u8], f32_weights: &[u8], int8_weights: &[u8], head: HeadInit) -> Self {
        Models {
            f32: load_on(config, tokenizer, f32_weights, head, CpuEngine::Reference).unwrap(),
            int8_reference: load_on(config, tokenizer, int8_weights, head, CpuEngine::Reference).unwrap(),
            int8_engine: load_on(config, tokenizer, int8_weights, head, CpuEngine::Int8).unwrap(),
        }
    }
}

fn check_model(name: &str, models: &Models, golden_file: &str) {
    let (classifier_f32, classifier_int8) = (&models.f32, &models.int8_reference);
    let goldens = goldens(golden_file);
    let Some(texts) = golden_texts(&goldens) else {
        return skip_or_fail(&format!("{golden_file} needs ../shared/data/tweepfake/validation.csv"));
    };
    for (g, t) in goldens.iter().zip(&texts) {
        let ids = classifier_f32.tokenizer().encode_batch(&[t.as_str()]).unwrap().row_ids(0);
        assert_eq!(ids, g.ids, "{name}: token ids differ for {t:?}");
    }
    let want_f32: Vec<Vec<f32>> = goldens.iter().map(|g| g.logits_f32.clone()).collect();
    let want_q: Vec<Vec<f32>> = goldens.iter().map(|g| g.logits_int8ref.clone()).collect();
    let got_f32 = logits(classifier_f32, &texts);
    let got_q = logits(classifier_int8, &texts);
    assert_logits_meet(&format!("{name} {golden_file} f32 vs PyTorch"), &got_f32, &want_f32, FLOAT);
    assert_logits_meet(
        &format!("{name} {golden_file} int8 reference vs PyTorch int8 reference"),
        &got_q,
        &want_q,
        FLOAT,
    );
    assert_logits_meet(&format!("{name} {golden_file} int8 reference vs PyTorch f32"), &got_q, &want_f32, INT8_WEIGHTS);
    let got_engine = logits(&models.int8_engine, &texts);
    assert_logits_meet(
        &format!("{name} {golden_file} int8 engine vs PyTorch int8 reference"),
        &got_engine,
        &want_q,
        INT8_COMPUTE,
    );
    let n = assert_decisive_labels_match(&format!("{name} f32"), &got_f32, &want_f32, DECISIVE_MARGIN);
    let m = assert_decisive_labels_match(&format!("{name} int8"), &got_q, &want_f32, DECISIVE_MARGIN);
    let e = assert_decisive_labels_match(&format!("{name} int8 engine"), &got_engine, &want_q, DECISIVE_MARGIN);
    eprintln!("{name} {golden_file}: labels agree on {n} (f32), {m} (int8 reference) and {e} (int8 engine) decisive rows of {}", texts.len());
}

#[test]
fn tiny_bert_matches_pytorch() {
    let (config, tokenizer, weights) = tiny_bytes("tiny/model.safetensors");
    let int8 = read(fixture("tiny/model.int8.safetensors"));
    let models = Models::load(&config, &tokenizer, &weights, &int8, HeadInit::Require);
    assert_eq!(models.int8_engine.info().dtype, "int8");
    assert!(models.int8_engine.info().cpu_kernel.unwrap().starts_with("int8 "));
    assert_eq!(models.int8_reference.info().cpu_kernel.unwrap(), "f32 reference");
    check_model("tiny", &models, "tiny_goldens.json");
    check_model("tiny", &models, "tiny_validation_goldens.json");
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

fn minilm_config(dir: &std::path::Path) -> Vec<u8> {
    let mut config = tweetguard::BertConfig::from_json(&read(dir.join("config.json"))).unwrap();
    config.set_labels(&["human", "bot"]);
    config.to_json().into_bytes()
}

/// MiniLM's config (with our labels), tokenizer and weights with the fixed head; `None` where it is not
/// fetched (after skipping, or failing in CI).
fn minilm_model() -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let Some(dir) = minilm_dir() else {
        skip_or_fail("all-MiniLM-L6-v2 is not fetched (run scripts/fetch-minilm.sh)");
        return None;
    };
    Some((minilm_config(&dir), read(dir.join("tokenizer.json")), minilm_with_head(&dir)))
}

#[test]
fn minilm_matches_pytorch() {
    let Some((config, tokenizer, weights)) = minilm_model() else { return };
    // The goldens' int8 reference (tests/python/make_fixtures.py) was made in blocks of 32 throughout,
    // before the format's 64-value blocks: compare on that quantization.
    let int8 = quant::quantize_safetensors_with(&weights, |_, _| quant::BLOCK).unwrap();
    eprintln!("MiniLM weights: f32 {} bytes, int8 {} bytes", weights.len(), int8.len());
    let models = Models::load(&config, &tokenizer, &weights, &int8, HeadInit::Require);
    check_model("minilm", &models, "minilm_goldens.json");
    check_model("minilm", &models, "minilm_validation_goldens.json");
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
        other => {
            return skip_or_fail(&format!(
                "the numpy reference quantizer did not run ({other:?}): pip install numpy safetensors"
            ))
        }
    }
    let reference = read(&tmp);
    let _ = std::fs::remove_file(&tmp);
    let rust = quant::quantize_safetensors(&read(dir.join("model.safetensors"))).unwrap();
    assert_same_tensors(&rust, &reference);
}

/// The int8 engine given float weights quantizes them as the exporter does (64-value blocks included): on
/// MiniLM its logits are those of the exported int8 file, bit for bit.
#[test]
fn int8_engine_on_float_weights_quantizes_as_the_exporter() {
    let Some((config, tokenizer, weights)) = minilm_model() else { return };
    let exported = quant::quantize_safetensors(&weights).unwrap();
    assert_eq!(
        quant::format_of(&exported).unwrap().as_deref(),
        Some(quant::FORMAT_INT8),
        "MiniLM gets 64-value blocks"
    );
    let texts = golden_texts(&goldens("minilm_goldens.json")).expect("texts");
    let on = |w: &[u8]| load_on(&config, &tokenizer, w, HeadInit::Require, CpuEngine::Int8).unwrap();
    let (from_float, from_file) = (logits(&on(&weights), &texts), logits(&on(&exported), &texts));
    assert_logits_close("MiniLM, int8 engine on f32 weights vs on the exported file", &from_float, &from_file, 0.0);
}

/// A bare checkpoint loads only when a random head is asked for, and then says it is untrained.
#[test]
fn bare_checkpoint_needs_an_explicit_random_head() {
    let Some(dir) = minilm_dir() else {
        return skip_or_fail("all-MiniLM-L6-v2 is not fetched (run scripts/fetch-minilm.sh)");
    };
    let (config, tokenizer, weights) =
        (read(dir.join("config.json")), read(dir.join("tokenizer.json")), read(dir.join("model.safetensors")));
    let err =
        load(&config, &tokenizer, &weights, HeadInit::Require).err().expect("a bare checkpoint must not load silently");
    assert!(err.to_string().contains("classifier"), "{err}");
    let model = load(&config, &tokenizer, &weights, HeadInit::RandomIfMissing { seed: 7 }).unwrap();
    assert!(model.info().untrained_head);
    let again = load(&config, &tokenizer, &weights, HeadInit::RandomIfMissing { seed: 7 }).unwrap();
    let texts = vec!["same seed, same head".to_string()];
    assert_eq!(logits(&model, &texts), logits(&again, &texts));
}
