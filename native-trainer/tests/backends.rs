//! `native-trainer predict --backend ...` on the tiny fixture: WebGPU (lavapipe on CI) gives the labels
//! and scores of the CPU's reference engine (the same f32 arithmetic; the int8 engine has its own tests); with no GPU adapter at all (wgpu restricted to a backend this build lacks), `auto`
//! runs on the CPU and says why, and a forced `webgpu` fails with a clear message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tweetguard::tolerance;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny")
}

fn predict(backend: &[&str], env: &[(&str, &str)], input: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_native-trainer"));
    command.arg("predict").arg("--backend").args(backend).arg("--model").arg(fixture()).arg("--input").arg(input);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    assert!(output.status.success(), "predict failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn input(dir: &Path) -> PathBuf {
    let path = dir.join("tweets.txt");
    std::fs::write(&path, "hello world\nFree followers! Click here https://t.co/x\n\nI love my dog so much\n").unwrap();
    path
}

#[test]
fn webgpu_and_cpu_predict_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input(tmp.path());
    let cpu = lines(&predict(&["cpu", "--cpu-engine", "reference"], &[], &input));
    let gpu = predict(&["webgpu"], &[], &input);
    if !gpu.status.success() {
        let err = String::from_utf8_lossy(&gpu.stderr);
        assert!(err.contains("no WebGPU adapter"), "{err}");
        assert!(std::env::var("CI").is_err(), "CI=true but no WebGPU adapter: {err}");
        eprintln!("SKIPPED: no WebGPU adapter here");
        return;
    }
    let gpu = lines(&gpu);
    assert_eq!(gpu.len(), cpu.len());
    for (g, c) in gpu.iter().zip(&cpu) {
        assert_eq!(g["backend"], "webgpu");
        assert_eq!(c["backend"], "cpu");
        assert_eq!(g["label"], c["label"], "{}", c["text"]);
        let (g_score, c_score) = (g["score"].as_f64().unwrap() as f32, c["score"].as_f64().unwrap() as f32);
        // A probability moves at most a quarter as far as the logits behind it.
        assert!(tolerance::WEBGPU.allows(g_score, c_score), "{}: {g_score} vs {c_score}", c["text"]);
    }
}

#[test]
fn without_any_adapter_auto_runs_on_the_cpu_and_webgpu_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input(tmp.path());
    // This build has no OpenGL backend: restricting wgpu to it leaves no adapter.
    let no_gpu = [("WGPU_BACKEND", "gl")];
    let auto = predict(&["auto"], &no_gpu, &input);
    let results = lines(&auto);
    assert!(results.iter().all(|r| r["backend"] == "cpu"));
    let log = String::from_utf8_lossy(&auto.stderr);
    assert!(log.contains("no WebGPU adapter"), "auto must say why it runs on the CPU: {log}");
    let forced = predict(&["webgpu"], &no_gpu, &input);
    assert!(!forced.status.success());
    let err = String::from_utf8_lossy(&forced.stderr);
    assert!(err.contains("no WebGPU adapter is available"), "{err}");
}
