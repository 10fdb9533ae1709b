//! Helpers shared by the native integration tests: fixture paths, golden files, closeness checks that
//! explain a failure, and the rule that a missing prerequisite is a visible skip locally and a failure
//! in CI.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tweetguard::backend::CpuEngine;
use tweetguard::tolerance::Tolerance;
use tweetguard::{BackendChoice, Classifier, HeadInit, LoadOptions, ModelBytes};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

pub fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let path = path.as_ref();
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Whether this run is CI, where a missing prerequisite must fail rather than skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips (locally) or fails (in CI) with a visible reason.
pub fn skip_or_fail(reason: &str) {
    if in_ci() {
        panic!("CI=true but {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// The TweepFake folder: `TWEEPFAKE_DIR`, else `../shared/data/tweepfake` beside the checkout.
pub fn tweepfake_dir() -> Option<PathBuf> {
    let dir =
        std::env::var_os("TWEEPFAKE_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("../shared/data/tweepfake"));
    dir.join("validation.csv").is_file().then_some(dir)
}

/// Texts of `validation.csv`, in file order (semicolon-separated, header row, text in column 2).
pub fn validation_texts() -> Option<Vec<String>> {
    let dir = tweepfake_dir()?;
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_path(dir.join("validation.csv")).ok()?;
    Some(reader.records().map(|r| r.expect("validation.csv row").get(1).unwrap_or_default().to_string()).collect())
}

/// `(text, account.type)` of every `validation.csv` row, in file order.
pub fn validation_rows() -> Option<Vec<(String, String)>> {
    Some(validation_rows_with_generator()?.into_iter().map(|(text, label, _)| (text, label)).collect())
}

/// `(text, account.type, class_type)` of every `validation.csv` row, in file order.
pub fn validation_rows_with_generator() -> Option<Vec<(String, String, String)>> {
    let dir = tweepfake_dir()?;
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_path(dir.join("validation.csv")).ok()?;
    let headers = reader.headers().expect("validation.csv header").clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("validation.csv has no {name} column"))
    };
    let (text, label, generator) = (column("text"), column("account.type"), column("class_type"));
    Some(
        reader
            .records()
            .map(|r| r.expect("validation.csv row"))
            .map(|r| (r[text].to_string(), r[label].to_string(), r[generator].to_string()))
            .collect(),
    )
}

/// The all-MiniLM-L6-v2 folder: `TWEETGUARD_MINILM_DIR`, else `.models/all-MiniLM-L6-v2`
/// (where `scripts/fetch-minilm.sh` puts it).
pub fn minilm_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TWEETGUARD_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".models/all-MiniLM-L6-v2"));
    dir.join("model.safetensors").is_file().then_some(dir)
}

/// all-MiniLM-L6-v2 (bare `BertModel` names) plus the committed fixed random head.
pub fn minilm_with_head(dir: &Path) -> Vec<u8> {
    let base = read(dir.join("model.safetensors"));
    let head = read(fixture("minilm_head.safetensors"));
    let (base, head) =
        (safetensors::SafeTensors::deserialize(&base).unwrap(), safetensors::SafeTensors::deserialize(&head).unwrap());
    let tensors: Vec<_> = base.tensors().into_iter().chain(head.tensors()).collect();
    safetensors::serialize(tensors, None).unwrap()
}

/// One golden case from `tests/python/make_fixtures.py`.
#[derive(Debug, Deserialize)]
pub struct Golden {
    pub text: Option<String>,
    pub row: Option<usize>,
    pub ids: Vec<u32>,
    pub logits_f32: Vec<f32>,
    pub logits_int8ref: Vec<f32>,
}

pub fn goldens(name: &str) -> Vec<Golden> {
    serde_json::from_slice(&read(fixture(name))).expect("golden JSON")
}

/// Texts of golden cases: their own text, or the validation row they name.
pub fn golden_texts(goldens: &[Golden]) -> Option<Vec<String>> {
    let validation = if goldens.iter().any(|g| g.row.is_some()) { Some(validation_texts()?) } else { None };
    Some(
        goldens
            .iter()
            .map(|g| match (&g.text, g.row) {
                (Some(t), _) => t.clone(),
                (None, Some(r)) => validation.as_ref().unwrap()[r].clone(),
                _ => panic!("golden without text or row"),
            })
            .collect(),
    )
}

pub fn tiny_bytes(weights: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (read(fixture("tiny/config.json")), read(fixture("tiny/tokenizer.json")), read(fixture(weights)))
}

pub fn load(config: &[u8], tokenizer: &[u8], weights: &[u8], head: HeadInit) -> tweetguard::Result<Classifier> {
    pollster::block_on(Classifier::load(
        ModelBytes { config, tokenizer, weights: weights.into() },
        LoadOptions { head, ..LoadOptions::default() },
    ))
}

/// A CPU classifier on a given CPU engine (the int8 engine, or the f32 reference).
pub fn load_on(
    config: &[u8],
    tokenizer: &[u8],
    weights: &[u8],
    head: HeadInit,
    cpu_engine: CpuEngine,
) -> tweetguard::Result<Classifier> {
    let options = LoadOptions { head, cpu_engine, backend: BackendChoice::Cpu, ..LoadOptions::default() };
    pollster::block_on(Classifier::load(ModelBytes { config, tokenizer, weights: weights.into() }, options))
}

/// Logits of `texts` through the public API.
pub fn logits(classifier: &Classifier, texts: &[String]) -> Vec<Vec<f32>> {
    let out = pollster::block_on(classifier.classify(texts)).expect("classify");
    out.results.into_iter().map(|r| r.logits).collect()
}

/// Largest absolute difference over all rows, and where it is.
pub fn max_abs_diff(got: &[Vec<f32>], want: &[Vec<f32>]) -> (f32, usize, usize) {
    assert_eq!(got.len(), want.len(), "row counts differ");
    let mut worst = (0f32, 0, 0);
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "row {r}: widths differ");
        for (c, (a, b)) in g.iter().zip(w).enumerate() {
            let d = (a - b).abs();
            if d > worst.0 || d.is_nan() {
                worst = (d, r, c);
            }
        }
    }
    worst
}

/// Asserts every logit is within `tol`, naming the worst element on failure.
pub fn assert_logits_close(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], tol: f32) -> f32 {
    assert_logits_within(what, got, want, tol, 0.0)
}

/// [`assert_logits_within`] with a named tolerance of `tweetguard::tolerance`.
pub fn assert_logits_meet(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], tol: Tolerance) -> f32 {
    assert_logits_within(what, got, want, tol.atol, tol.rtol)
}

/// Asserts `|got - want| <= atol + rtol * |want|` for every logit, naming the worst element on failure;
/// prints the largest absolute difference and the largest probability difference.
pub fn assert_logits_within(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], atol: f32, rtol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: row counts differ");
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: row {r} widths differ");
        for (c, (a, b)) in g.iter().zip(w).enumerate() {
            let limit = atol + rtol * b.abs();
            assert!((a - b).abs() <= limit, "{what}: |{a} - {b}| > {limit:e} at row {r} col {c}");
        }
    }
    let (d, _, _) = max_abs_diff(got, want);
    let dp = got.iter().zip(want).map(|(g, w)| (p1(g) - p1(w)).abs()).fold(0f32, f32::max);
    eprintln!(
        "{what}: max |logit diff| {d:.3e}, max |prob diff| {dp:.3e} over {} rows (atol {atol:e}, rtol {rtol:e})",
        got.len()
    );
    d
}

/// Class probability of class 1 from two logits.
pub fn p1(logits: &[f32]) -> f32 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|l| (l - m).exp()).collect();
    e[1] / e.iter().sum::<f32>()
}

/// Compares argmax labels only where the reference is decisive (|p - 0.5| > margin); returns how many
/// rows were compared.
pub fn assert_decisive_labels_match(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], margin: f32) -> usize {
    let mut compared = 0;
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        let pw = p1(w);
        if (pw - 0.5).abs() <= margin {
            continue;
        }
        compared += 1;
        assert_eq!(p1(g) > 0.5, pw > 0.5, "{what}: row {r} label differs (p={}, reference p={pw})", p1(g));
    }
    compared
}
