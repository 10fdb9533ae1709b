//! End-to-end smoke test of the CPU training path (run in CI): fine-tune the tiny fixture BERT with a
//! fresh head on a few hundred TweepFake rows, check that the loss falls and every report file is written,
//! that the manifest describes the files, and that the exported folder loads and predicts through the
//! core crate (int8, as the browser runs it) and as an HF f32 checkpoint.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tweepfake() -> Option<PathBuf> {
    let dir = std::env::var_os("TWEEPFAKE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data/tweepfake"));
    dir.join("train.csv").is_file().then_some(dir)
}

/// The tiny fixture without its classifier head: a "pretrained" checkpoint to fine-tune.
fn bare_tiny(dir: &Path) {
    let fixture = workspace().join("tests/fixtures/tiny");
    std::fs::create_dir_all(dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
    let bytes = std::fs::read(fixture.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<_> = st.tensors().into_iter().filter(|(n, _)| !n.starts_with("classifier.")).collect();
    std::fs::write(dir.join("model.safetensors"), safetensors::serialize(kept, None).unwrap()).unwrap();
}

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_native-trainer"))
}

#[test]
fn trains_evaluates_and_exports_on_cpu() {
    let Some(data) = tweepfake() else {
        assert!(std::env::var("CI").is_err(), "CI=true but ../shared/data/tweepfake is missing");
        eprintln!("SKIPPED: ../shared/data/tweepfake is missing");
        return;
    };
    let tmp = std::env::temp_dir().join(format!("tweetguard-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let (base, out) = (tmp.join("base"), tmp.join("out"));
    bare_tiny(&base);
    let status = trainer()
        .args(["train", "--device", "cpu", "--limit", "384", "--eval-limit", "256", "--num-train-epochs", "2"])
        .args(["--learning-rate", "2e-3", "--train-batch-size", "16", "--seed", "1"])
        .arg("--model")
        .arg(&base)
        .arg("--output-dir")
        .arg(&out)
        .env("TWEEPFAKE_DIR", &data)
        .status()
        .unwrap();
    assert!(status.success());

    for f in [
        "eval_results.txt",
        "predictions.txt",
        "training_loss.tsv",
        "training_curve.svg",
        "confusion_matrix.svg",
        "hf/model.safetensors",
        "hf/config.json",
        "hf/tokenizer.json",
        "model/manifest.json",
        "model/MODEL_CARD.md",
        "checkpoints/epoch-2/trainer_state.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for svg in ["training_curve.svg", "confusion_matrix.svg"] {
        assert!(std::fs::read_to_string(out.join(svg)).unwrap().starts_with("<svg"), "{svg} is not an SVG document");
    }
    assert_eq!(std::fs::read_to_string(out.join("predictions.txt")).unwrap().lines().count(), 256);
    // The card says how the model was made: each epoch's validation and the arguments.
    let card = std::fs::read_to_string(out.join("model/MODEL_CARD.md")).unwrap();
    assert!(
        card.contains("## Training") && card.contains("| 2 |") && card.contains("\"num_train_epochs\": 2.0"),
        "{card}"
    );
    assert!(card.contains("gives the f32 model's label on 256 of 256 rows"), "{card}");
    let losses: Vec<f64> = std::fs::read_to_string(out.join("training_loss.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(1).unwrap().parse().unwrap())
        .collect();
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (first, last) = (mean(&losses[..6]), mean(&losses[losses.len() - 6..]));
    assert!(last < first - 0.05, "loss did not fall: first steps {first:.4}, last steps {last:.4}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model/manifest.json")).unwrap()).unwrap();
    for file in manifest["files"].as_array().unwrap() {
        let bytes = std::fs::read(out.join("model").join(file["path"].as_str().unwrap())).unwrap();
        assert_eq!(bytes.len() as u64, file["bytes"].as_u64().unwrap());
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), file["sha256"].as_str().unwrap());
    }
    let t = manifest["calibration"]["temperature"].as_f64().unwrap();
    assert!(t > 0.05 && t < 20.0);
    let acc = manifest["metrics"]["validation"]["int8"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.6, "int8 validation accuracy {acc}");

    // The exported folder predicts through the core crate, int8 from OUT/, f32 from OUT/hf.
    for model in [out.clone(), out.join("hf")] {
        let output = trainer()
            .args(["predict", "--input", "-"])
            .arg("--model")
            .arg(&model)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        output.stdin.as_ref().unwrap().write_all(b"hello world\nwish i can i would be seeing other\n").unwrap();
        let result = output.wait_with_output().unwrap();
        assert!(result.status.success());
        let lines: Vec<serde_json::Value> =
            String::from_utf8(result.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l["label"] == "bot" || l["label"] == "human"));
    }

    // `export` of the HF folder reproduces the int8 model and its metrics on the same rows.
    let again = tmp.join("exported");
    let status = trainer()
        .args(["export", "--eval-limit", "256", "--model"])
        .arg(out.join("hf"))
        .arg("--output-dir")
        .arg(&again)
        .env("TWEEPFAKE_DIR", &data)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        again.join("confusion_matrix.svg").is_file() && !again.join("training_curve.svg").exists(),
        "export draws no training curve"
    );
    let manifest2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(again.join("model/manifest.json")).unwrap()).unwrap();
    let (v2, v1) = (&manifest2["metrics"]["validation"], &manifest["metrics"]["validation"]);
    for key in ["f32", "int8", "rows"] {
        assert_eq!(v2[key], v1[key], "{key}");
    }
    // train's f32 logits come from its own validation pass, export's from a fresh one: the same to
    // summation order.
    let (a2, a1) = (&v2["int8_vs_f32"], &v1["int8_vs_f32"]);
    assert_eq!(a2["same_label"], a1["same_label"]);
    for key in ["max_abs_logit_diff", "mean_abs_logit_diff"] {
        assert!((a2[key].as_f64().unwrap() - a1[key].as_f64().unwrap()).abs() < 1e-4, "{key}: {a2} vs {a1}");
    }
    let (a, b) = (
        std::fs::read(again.join("model/model.int8.safetensors")).unwrap(),
        std::fs::read(out.join("model/model.int8.safetensors")).unwrap(),
    );
    let (a, b) =
        (safetensors::SafeTensors::deserialize(&a).unwrap(), safetensors::SafeTensors::deserialize(&b).unwrap());
    assert_eq!(a.len(), b.len());
    for (name, view) in a.tensors() {
        assert!(view.data() == b.tensor(&name).unwrap().data(), "{name} differs between train's export and export");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn refuses_to_overwrite_and_reports_bad_rows() {
    let tmp = std::env::temp_dir().join(format!("tweetguard-smoke-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("out")).unwrap();
    std::fs::write(tmp.join("out/keep.txt"), "precious").unwrap();
    std::fs::write(tmp.join("bad.tsv"), "a\t1\t\tfine\nb\tmaybe\t\ttext\n").unwrap();
    let run = |extra: &[&str]| {
        let out = trainer()
            .args(["train", "--device", "cpu", "--model"])
            .arg(workspace().join("tests/fixtures/tiny"))
            .arg("--train-file")
            .arg(tmp.join("bad.tsv"))
            .arg("--validation-file")
            .arg(tmp.join("bad.tsv"))
            .arg("--output-dir")
            .arg(tmp.join("out"))
            .args(extra)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (ok, err) = run(&[]);
    assert!(!ok && err.contains("not empty"), "{err}");
    let (ok, err) = run(&["--overwrite-output-dir"]);
    assert!(!ok && err.contains("bad.tsv:2") && err.contains("--skip-bad-rows"), "{err}");
    assert_eq!(std::fs::read_to_string(tmp.join("out/keep.txt")).unwrap(), "precious");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `cv` end to end on the tiny BERT: families are held out whole, both evaluation sets are scored by each
/// fold's int8 model, a fold already done is not run again (its predictions are not rewritten), the
/// report covers the folds done and says when it is partial, and with `--normalize-tweets` the folds'
/// models carry the rule in their tokenizer. An account that belongs to no family is refused by name.
#[test]
fn grouped_cross_validation_holds_out_whole_families() {
    let Some(data) = tweepfake() else {
        assert!(std::env::var("CI").is_err(), "CI=true but ../shared/data/tweepfake is missing");
        eprintln!("SKIPPED: ../shared/data/tweepfake is missing");
        return;
    };
    let tmp = std::env::temp_dir().join(format!("tweetguard-cv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let (base, out) = (tmp.join("base"), tmp.join("cv"));
    bare_tiny(&base);
    let cv = |extra: &[&str]| {
        trainer()
            .args(["cv", "--device", "cpu", "--limit", "600", "--num-train-epochs", "1", "--folds", "3"])
            .args([
                "--learning-rate",
                "2e-3",
                "--train-batch-size",
                "16",
                "--max-seq-length",
                "32",
                "--normalize-tweets",
            ])
            .arg("--model")
            .arg(&base)
            .arg("--output-dir")
            .arg(&out)
            .args(extra)
            .env("TWEEPFAKE_DIR", &data)
            .output()
            .unwrap()
    };
    let first = cv(&["--fold", "1"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let report = std::fs::read_to_string(out.join("cv_results.md")).unwrap();
    assert!(report.contains("Folds done: 1 of 3 (1)") && report.contains("**Partial"), "{report}");
    let fold_1 = out.join("fold-1/predictions.jsonl");
    let written = std::fs::metadata(&fold_1).unwrap().modified().unwrap();

    let rest = cv(&[]);
    assert!(rest.status.success(), "{}", String::from_utf8_lossy(&rest.stderr));
    assert!(String::from_utf8_lossy(&rest.stderr).contains("fold 1: done already"));
    assert_eq!(std::fs::metadata(&fold_1).unwrap().modified().unwrap(), written, "a finished fold is not rerun");

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("cv_results.json")).unwrap()).unwrap();
    assert_eq!(results["done"].as_array().unwrap().len(), 3);
    let unseen = results["sets"]["unseen"]["tweets"].as_u64().unwrap();
    let seen = results["sets"]["seen"]["tweets"].as_u64().unwrap();
    assert_eq!(unseen, 600, "every tweet is unseen in exactly one fold");
    assert!(seen > 0 && seen < 200, "about 10 % of the other folds' tweets, per fold: {seen}");
    for fold in 0..3 {
        let dir = out.join(format!("fold-{fold}"));
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("fold.json")).unwrap()).unwrap();
        let held_out: Vec<&str> = summary["families"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        let lines = std::fs::read_to_string(dir.join("predictions.jsonl")).unwrap();
        for line in lines.lines() {
            let p: serde_json::Value = serde_json::from_str(line).unwrap();
            let family = p["family"].as_str().unwrap();
            assert_eq!(p["set"] == "unseen", held_out.contains(&family), "fold {fold}: {line}");
        }
        // The training file holds none of the held-out families' accounts.
        let train = std::fs::read_to_string(dir.join("data/train.csv")).unwrap();
        for account in
            native_trainer::families::FAMILIES.iter().filter(|(f, _)| held_out.contains(f)).flat_map(|(_, a)| *a)
        {
            assert!(!train.lines().any(|l| l.starts_with(&format!("{account};"))), "fold {fold} trained on {account}");
        }
        let tokenizer = std::fs::read(dir.join("run/model/tokenizer.json")).unwrap();
        assert!(tweetguard::tweet_text::normalizes_tweets(&tokenizer).unwrap(), "fold {fold}: --normalize-tweets");
        assert!(!dir.join("run/checkpoints").exists(), "fold {fold}: its optimiser checkpoints are removed");
    }
    let report = std::fs::read_to_string(out.join("cv_results.md")).unwrap();
    assert!(!report.contains("**Partial") && report.contains("Unseen accounts by family"), "{report}");
    assert!(std::fs::read_to_string(out.join("reliability.svg")).unwrap().starts_with("<svg"));

    // The recipe's figures travel into the model folder it trains: manifest and card.
    let trained = tmp.join("trained");
    let status = trainer()
        .args(["train", "--device", "cpu", "--limit", "200", "--num-train-epochs", "1"])
        .args(["--max-seq-length", "32", "--model"])
        .arg(&base)
        .arg("--output-dir")
        .arg(&trained)
        .arg("--cross-validation")
        .arg(&out)
        .arg("--calibrate-on-unseen-accounts")
        .env("TWEEPFAKE_DIR", &data)
        .status()
        .unwrap();
    assert!(status.success());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(trained.join("model/manifest.json")).unwrap()).unwrap();
    let cv = &manifest["metrics"]["cross_validation"];
    assert_eq!((cv["folds"].as_u64(), cv["folds_done"].as_u64()), (Some(3), Some(3)));
    assert_eq!(cv["unseen"]["accuracy"], results["sets"]["unseen"]["pooled"]["accuracy"]);
    assert_eq!(cv["seen"]["tweets"].as_u64(), Some(seen));
    let card = std::fs::read_to_string(trained.join("model/MODEL_CARD.md")).unwrap();
    assert!(card.contains("## Cross-validated estimate") && card.contains("| unseen | 600 |"), "{card}");
    assert!(card.contains("## By generator (validation, int8)"), "{card}");
    // Calibrated for the accounts users meet: the temperature `cv` fitted on its unseen accounts.
    assert_eq!(manifest["calibration"]["temperature"], cv["unseen_temperature"]);
    assert_eq!(manifest["calibration"]["fitted_on"], "cross-validation: unseen accounts");
    assert!(card.contains("accounts its folds never saw"), "{card}");
    assert!(manifest["metrics"]["validation"]["int8_by_generator"].as_array().is_some_and(|rows| rows.len() == 4));

    // `eval --record` adds the same to a folder exported without them, leaving its weights alone; twice
    // changes nothing, and another data file than the export's validation split is refused.
    let plain = tmp.join("plain");
    let status = trainer()
        .args(["train", "--device", "cpu", "--limit", "200", "--num-train-epochs", "1", "--max-seq-length", "32"])
        .arg("--model")
        .arg(&base)
        .arg("--output-dir")
        .arg(&plain)
        .env("TWEEPFAKE_DIR", &data)
        .status()
        .unwrap();
    assert!(status.success());
    let model = plain.join("model");
    let read = |name: &str| std::fs::read(model.join(name)).unwrap();
    let (weights, card_before) = (read("model.int8.safetensors"), String::from_utf8(read("MODEL_CARD.md")).unwrap());
    assert!(!card_before.contains("## Cross-validated estimate"));
    let record = |extra: &[&str]| {
        trainer()
            .args(["eval", "--backend", "cpu", "--record", "--cross-validation"])
            .arg(&out)
            .arg("--model")
            .arg(&model)
            .args(extra)
            .env("TWEEPFAKE_DIR", &data)
            .output()
            .unwrap()
    };
    let recorded = record(&[]);
    assert!(recorded.status.success(), "{}", String::from_utf8_lossy(&recorded.stderr));
    let card = String::from_utf8(read("MODEL_CARD.md")).unwrap();
    let kept = card_before.split("\n## By generator").next().unwrap().trim_end();
    assert!(card.starts_with(kept), "the card keeps what it said, its own sections replaced");
    assert_eq!(card.matches("## By generator").count(), 1);
    assert!(
        card.contains("## Cross-validated estimate") && card.contains("## By generator (validation, int8)"),
        "{card}"
    );
    assert_eq!(read("model.int8.safetensors"), weights);
    let manifest: serde_json::Value = serde_json::from_slice(&read("manifest.json")).unwrap();
    assert_eq!(manifest["metrics"]["cross_validation"], *cv);
    assert_eq!(manifest["metrics"]["validation"]["int8_by_generator"].as_array().map(Vec::len), Some(4));
    assert!(record(&[]).status.success());
    assert_eq!(String::from_utf8(read("MODEL_CARD.md")).unwrap(), card, "recording twice changes nothing");
    // The folder still passes its manifest's checks: predict loads it.
    let predicted = trainer().args(["predict", "--model"]).arg(&model).args(["--input", "-"]).output().unwrap();
    assert!(predicted.status.success(), "{}", String::from_utf8_lossy(&predicted.stderr));
    let train_csv = data.join("train.csv");
    let refused = record(&["--data", train_csv.to_str().unwrap()]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("not the split"));

    // A screen name in no family is an error that names it, before any training.
    let stranger = tmp.join("stranger.csv");
    std::fs::write(&stranger, "screen_name;text;account.type;class_type\ndril;a;human;human\nnew_bot;b;bot;gpt2\n")
        .unwrap();
    let refused = trainer()
        .args(["cv", "--device", "cpu", "--folds", "2", "--model"])
        .arg(&base)
        .arg("--train-file")
        .arg(&stranger)
        .arg("--output-dir")
        .arg(tmp.join("refused"))
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && message.contains("\"new_bot\"") && message.contains("row 2"), "{message}");
    let _ = std::fs::remove_dir_all(&tmp);
}
