//! The model the repository ships (`models/tweetguard-minilm-l6`, what the main command serves) is what
//! its manifest claims: every file has the listed size and SHA-256, nothing unlisted lies beside them, and
//! its int8 validation figures, recomputed through the core exactly as the browser runs it (int8 engine,
//! the manifest's maximum length) on all 2,302 rows, are the manifest's: accuracy (at least
//! `MIN_ACCURACY`), F1, MCC and, where the manifest has them, the per-generator rows.

mod common;

use common::{read, root, skip_or_fail, validation_rows_with_generator};
use tweetguard::backend::CpuEngine;
use tweetguard::manifest::Manifest;
use tweetguard::{BackendChoice, Classifier, LoadOptions, ModelBytes};

const SHIPPED: &str = "models/tweetguard-minilm-l6";
/// The floor issue 11 set for the shipped model (int8, validation).
const MIN_ACCURACY: f64 = 0.87;

#[test]
fn the_shipped_model_is_what_its_manifest_claims() {
    let dir = root().join(SHIPPED);
    let manifest = Manifest::parse(&read(dir.join("manifest.json"))).expect("manifest.json");
    for listed in &manifest.files {
        manifest.verify(&listed.path, &read(dir.join(&listed.path))).unwrap();
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name == "manifest.json" || manifest.listed(&name).is_some(), "{SHIPPED}/{name} is not in the manifest");
    }
    for needed in ["config.json", "tokenizer.json", "model.int8.safetensors", "MODEL_CARD.md"] {
        assert!(manifest.listed(needed).is_some(), "the manifest lists no {needed}");
    }

    let Some(rows) = validation_rows_with_generator() else {
        return skip_or_fail("../shared/data/tweepfake/validation.csv is not there");
    };
    let (config, tokenizer, weights) =
        (read(dir.join("config.json")), read(dir.join("tokenizer.json")), read(dir.join("model.int8.safetensors")));
    let options = LoadOptions {
        backend: BackendChoice::Cpu,
        cpu_engine: CpuEngine::Int8,
        max_length: manifest.max_length,
        temperature: manifest.temperature(),
        ..Default::default()
    };
    let classifier = pollster::block_on(Classifier::load(
        ModelBytes { config: &config, tokenizer: &tokenizer, weights: (&weights).into() },
        options,
    ))
    .unwrap();
    let texts: Vec<String> = rows.iter().map(|(text, _, _)| text.clone()).collect();
    let output = pollster::block_on(classifier.classify(&texts)).unwrap();
    let correct = output.results.iter().zip(&rows).filter(|(result, (_, label, _))| &result.label == label).count();
    let accuracy = correct as f64 / rows.len() as f64;
    eprintln!("{SHIPPED}: int8 validation accuracy {accuracy:.4} ({correct}/{})", rows.len());

    let claimed = manifest
        .metrics
        .pointer("/validation/int8/accuracy")
        .and_then(|a| a.as_f64())
        .expect("the manifest's int8 accuracy");
    assert_eq!(manifest.metrics.pointer("/validation/rows").and_then(|r| r.as_u64()), Some(rows.len() as u64));
    // The int8 engine is bit-exact across instruction sets: the same rows give the same count.
    assert!(
        (accuracy - claimed).abs() < 0.5 / rows.len() as f64,
        "recomputed {accuracy:.4}, the manifest claims {claimed:.4}"
    );
    assert!(accuracy >= MIN_ACCURACY, "int8 validation accuracy {accuracy:.4} < {MIN_ACCURACY}");

    // F1 and MCC of `bot` from the confusion counts, as the trainer computes them (scikit-learn's).
    let count = |gold: &str, predicted: &str| {
        output.results.iter().zip(&rows).filter(|(r, (_, label, _))| label == gold && r.label == predicted).count()
            as f64
    };
    let (tp, fp, fn_, tn) =
        (count("bot", "bot"), count("human", "bot"), count("bot", "human"), count("human", "human"));
    let f1 = 2.0 * tp / (2.0 * tp + fp + fn_);
    let mcc = (tp * tn - fp * fn_) / ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
    for (name, value) in [("f1", f1), ("mcc", mcc)] {
        let claimed = manifest.metrics.pointer(&format!("/validation/int8/{name}")).and_then(|v| v.as_f64()).unwrap();
        assert!((value - claimed).abs() < 1e-9, "int8 {name}: recomputed {value:.6}, the manifest claims {claimed:.6}");
    }
    // Per generator (TweepFake's class_type), where the manifest lists them: every row's counts.
    if let Some(by_generator) = manifest.metrics.pointer("/validation/int8_by_generator").and_then(|v| v.as_array()) {
        for row in by_generator {
            let generator = row["generator"].as_str().unwrap();
            let of = |predicted: &str| {
                output.results.iter().zip(&rows).filter(|(r, (_, _, g))| g == generator && r.label == predicted).count()
            };
            let counted = (of("human") as u64, of("bot") as u64);
            let claimed = (row["predicted_human"].as_u64().unwrap(), row["predicted_bot"].as_u64().unwrap());
            assert_eq!(counted, claimed, "{generator}: labelled (human, bot)");
        }
    } else {
        eprintln!("{SHIPPED}: its manifest predates per-generator metrics; checked accuracy, F1 and MCC");
    }
}
