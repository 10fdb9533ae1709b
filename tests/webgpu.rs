//! The WebGPU backend end to end, natively through wgpu (lavapipe on CI): the whole model's logits
//! against the CPU reference on the tiny fixture, f32 and int8 (WebGPU computes the int8 format's
//! reference semantics, so both within `tolerance::WEBGPU`), on real validation tweets; `auto` refusing a
//! CPU adapter with a reason; a lost device falling back to the CPU (the int8 engine) with answers within
//! `tolerance::INT8_COMPUTE`. Without an adapter the tests skip and say so; with `CI=true` they fail.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::*;
use tweetguard::backend::CpuEngine;
use tweetguard::tolerance::{DECISIVE_MARGIN, INT8_COMPUTE, WEBGPU};
use tweetguard::{BackendChoice, BackendKind, Classifier, HeadInit, LoadOptions, ModelBytes};

fn load_with(weights: &[u8], backend: BackendChoice, cpu_engine: CpuEngine) -> tweetguard::Result<Classifier> {
    let (config, tokenizer) = (read(fixture("tiny/config.json")), read(fixture("tiny/tokenizer.json")));
    let options = LoadOptions { backend, cpu_engine, batch_size: Some(16), ..LoadOptions::default() };
    pollster::block_on(Classifier::load(
        ModelBytes { config: &config, tokenizer: &tokenizer, weights: weights.into() },
        options,
    ))
}

fn load(weights: &[u8], backend: BackendChoice) -> tweetguard::Result<Classifier> {
    load_with(weights, backend, CpuEngine::Auto)
}

/// The forced-WebGPU classifier, or `None` (skip) where this machine has no adapter.
fn gpu_classifier(weights: &[u8]) -> Option<Classifier> {
    match load(weights, BackendChoice::WebGpu) {
        Ok(classifier) => Some(classifier),
        Err(err) if err.to_string().contains("no WebGPU adapter") => {
            skip_or_fail(&format!("there is no WebGPU adapter ({err}); install mesa-vulkan-drivers"));
            None
        }
        Err(err) => panic!("WebGPU load failed: {err}"),
    }
}

fn texts() -> Vec<String> {
    let mut texts: Vec<String> =
        ["", "hello world", "Just setting up my twttr 🐦", &"long tweet ".repeat(80)].map(String::from).to_vec();
    if let Some(validation) = validation_texts() {
        texts.extend(validation.into_iter().take(96));
    }
    texts
}

fn decisive_labels_agree(gpu: &tweetguard::Classification, cpu: &tweetguard::Classification) {
    for (i, (g, c)) in gpu.results.iter().zip(&cpu.results).enumerate() {
        if (c.score - 0.5).abs() > DECISIVE_MARGIN {
            assert_eq!(g.label, c.label, "row {i}: WebGPU and CPU labels differ on a decisive row");
        }
    }
}

#[test]
fn webgpu_logits_match_the_cpu_reference_f32_and_int8() {
    for file in ["tiny/model.safetensors", "tiny/model.int8.safetensors"] {
        let weights = read(fixture(file));
        let Some(gpu) = gpu_classifier(&weights) else { return };
        let cpu = load_with(&weights, BackendChoice::Cpu, CpuEngine::Reference).unwrap();
        let texts = texts();
        let (g, c) =
            (pollster::block_on(gpu.classify(&texts)).unwrap(), pollster::block_on(cpu.classify(&texts)).unwrap());
        assert_eq!(g.backend, BackendKind::WebGpu, "{:?}", g.fallback_reason);
        assert_eq!(c.backend, BackendKind::Cpu);
        let gl: Vec<Vec<f32>> = g.results.iter().map(|r| r.logits.clone()).collect();
        let cl: Vec<Vec<f32>> = c.results.iter().map(|r| r.logits.clone()).collect();
        assert_logits_meet(&format!("WebGPU vs the CPU reference, {file}"), &gl, &cl, WEBGPU);
        decisive_labels_agree(&g, &c);
        assert!(g.results[3].truncated);
        let info = gpu.info();
        assert_eq!(info.backend, "webgpu");
        assert!(info.adapter.is_some());
    }
}

#[test]
fn batch_one_and_a_large_batch_give_the_same_logits() {
    let weights = read(fixture("tiny/model.int8.safetensors"));
    let Some(gpu) = gpu_classifier(&weights) else { return };
    let texts = texts();
    let all = pollster::block_on(gpu.classify(&texts)).unwrap();
    for (i, text) in texts.iter().enumerate().step_by(17) {
        let one = pollster::block_on(gpu.classify(&[text])).unwrap();
        assert_logits_close(
            &format!("row {i} alone vs in a batch"),
            &[one.results[0].logits.clone()],
            &[all.results[i].logits.clone()],
            1e-4,
        );
    }
}

#[test]
fn auto_prefers_the_cpu_on_a_software_adapter_and_says_why() {
    let weights = read(fixture("tiny/model.int8.safetensors"));
    let Some(gpu) = gpu_classifier(&weights) else { return };
    let adapter = gpu.info().adapter.unwrap();
    let auto = load(&weights, BackendChoice::Auto).unwrap();
    let out = pollster::block_on(auto.classify(&["hello"])).unwrap();
    let software = ["llvmpipe", "lavapipe", "swiftshader"].iter().any(|s| adapter.to_lowercase().contains(s));
    if software {
        assert_eq!(out.backend, BackendKind::Cpu);
        let reason = out.fallback_reason.expect("auto must say why it did not use WebGPU");
        assert!(reason.contains("CPU/software"), "{reason}");
    } else {
        eprintln!("adapter {adapter} is a real GPU: auto chose {:?}", out.backend);
    }
}

#[test]
fn a_lost_device_falls_back_to_the_cpu_with_the_same_answers() {
    let weights = read(fixture("tiny/model.int8.safetensors"));
    let Some(gpu) = gpu_classifier(&weights) else { return };
    let texts = texts();
    let before = pollster::block_on(gpu.classify(&texts)).unwrap();
    assert_eq!(before.backend, BackendKind::WebGpu);
    gpu.simulate_device_loss();
    for _ in 0..2 {
        let after = pollster::block_on(gpu.classify(&texts)).unwrap();
        assert_eq!(after.backend, BackendKind::Cpu);
        let reason = after.fallback_reason.clone().unwrap();
        assert!(reason.contains("lost") && reason.contains("CPU"), "{reason}");
        decisive_labels_agree(&before, &after);
        let (b, a): (Vec<_>, Vec<_>) =
            before.results.iter().zip(&after.results).map(|(b, a)| (b.logits.clone(), a.logits.clone())).unzip();
        assert_logits_meet("before vs after the loss", &a, &b, INT8_COMPUTE);
    }
    assert_eq!(gpu.info().backend, "cpu");
}

#[test]
fn an_untrained_head_is_the_same_on_both_backends() {
    let bytes = read(fixture("tiny/model.safetensors"));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<_> = st.tensors().into_iter().filter(|(n, _)| !n.starts_with("classifier.")).collect();
    let bare = safetensors::serialize(kept, None).unwrap();
    let (config, tokenizer) = (read(fixture("tiny/config.json")), read(fixture("tiny/tokenizer.json")));
    let load_bare = |backend| {
        let options = LoadOptions { backend, head: HeadInit::RandomIfMissing { seed: 3 }, ..LoadOptions::default() };
        pollster::block_on(Classifier::load(
            ModelBytes { config: &config, tokenizer: &tokenizer, weights: (&bare).into() },
            options,
        ))
    };
    let Ok(gpu) = load_bare(BackendChoice::WebGpu) else { return skip_or_fail("no WebGPU adapter") };
    let cpu = load_bare(BackendChoice::Cpu).unwrap();
    assert!(gpu.info().untrained_head && cpu.info().untrained_head);
    let texts = texts();
    let g: Vec<_> = pollster::block_on(gpu.classify(&texts)).unwrap().results.into_iter().map(|r| r.logits).collect();
    let c: Vec<_> = pollster::block_on(cpu.classify(&texts)).unwrap().results.into_iter().map(|r| r.logits).collect();
    assert_logits_meet("untrained head, WebGPU vs CPU", &g, &c, WEBGPU);
}

/// `Engine::profile` times every dispatch of a pass with timestamp queries: one entry per dispatch, in
/// recording order, finite and non-negative, with the logits of an ordinary call. Adapters without
/// timestamp queries must say so.
#[test]
fn profiling_times_every_dispatch_and_changes_no_result() {
    use tweetguard::backend::webgpu::SPLIT_SUM_LABEL;
    use tweetguard::backend::{CpuEngine, Engine, EngineOptions};
    let (config, tokenizer) = (read(fixture("tiny/config.json")), read(fixture("tiny/tokenizer.json")));
    let config = tweetguard::BertConfig::from_json(&config).unwrap();
    let batch = tweetguard::tokenize::BertTokenizer::from_json(&tokenizer, 32)
        .unwrap()
        .encode_batch(&["hello world", "buy followers now"])
        .unwrap();
    let weights = read(fixture("tiny/model.int8.safetensors"));
    let options = EngineOptions { backend: BackendChoice::WebGpu, cpu: CpuEngine::Auto, head: HeadInit::Require };
    let load = Engine::load(weights, &config, 2, &options, &batch);
    let engine = match pollster::block_on(load) {
        Ok((engine, _)) => engine,
        Err(err) if err.to_string().contains("no WebGPU adapter") => {
            return skip_or_fail(&format!("no WebGPU adapter ({err})"))
        }
        Err(err) => panic!("WebGPU load failed: {err}"),
    };
    let profile = match pollster::block_on(engine.profile(&batch)) {
        Ok(Some(profile)) => profile,
        Ok(None) => panic!("a forced WebGPU engine profiled nothing"),
        Err(err) => {
            assert!(err.to_string().contains("no timestamp queries"), "{err}");
            return eprintln!("SKIPPED: {err}");
        }
    };
    let labels: Vec<&str> = profile.kernels.iter().map(|(label, _)| *label).collect();
    // Steps in order, a linear layer split along k followed by the dispatch that adds up its parts.
    let steps: Vec<&str> = labels.iter().copied().filter(|l| *l != SPLIT_SUM_LABEL).collect();
    let layer =
        ["qkv", "attention", "attention output", "layernorm", "intermediate + activation", "output", "layernorm"];
    let want: Vec<&str> = ["embeddings + layernorm"]
        .into_iter()
        .chain(std::iter::repeat_n(layer, config.num_hidden_layers).flatten())
        .chain(["pooler + classifier"])
        .collect();
    assert_eq!(steps, want);
    for (i, _) in labels.iter().enumerate().filter(|(_, l)| **l == SPLIT_SUM_LABEL) {
        let linears = ["qkv", "attention output", "intermediate + activation", "output"];
        assert!(linears.contains(&labels[i - 1]), "a split-k sum after {}: {labels:?}", labels[i - 1]);
    }
    assert!(profile.kernels.iter().all(|(_, ms)| ms.is_finite() && *ms >= 0.0), "{:?}", profile.kernels);
    assert!(profile.kernels.iter().map(|(_, ms)| ms).sum::<f64>() > 0.0, "{:?}", profile.kernels);
    let (logits, kind) = pollster::block_on(engine.logits(&batch)).unwrap();
    assert_eq!(kind, BackendKind::WebGpu);
    assert_eq!(profile.logits, logits);
    eprintln!("dispatch times (ms): {:?}", profile.kernels);
}

/// What a classify call costs on WebGPU once the workspace has grown to its size (a warm-up call of each
/// size first): no buffer, bind group, layout, pipeline or shader module created; at most two uploads
/// (the token ids of every pass, the dispatches' parameters); one submit and one readback, for a call of
/// one pass and for a call of several (passes of 16 texts here, 100 texts in 7 passes), whose passes
/// all run in that one submit.
#[test]
fn a_call_after_warm_up_creates_nothing_and_submits_and_reads_back_once() {
    let weights = read(fixture("tiny/model.int8.safetensors"));
    let Some(gpu) = gpu_classifier(&weights) else { return };
    let texts = texts();
    let count = |texts: &[String]| {
        let before = gpu.gpu_counts().expect("a WebGPU classifier counts its calls");
        let out = pollster::block_on(gpu.classify(texts)).unwrap();
        assert_eq!(out.backend, BackendKind::WebGpu, "{:?}", out.fallback_reason);
        gpu.gpu_counts().unwrap().since(before)
    };
    let calls = [&texts[..], &texts[..16], &texts[3..4]];
    let warm_up = calls.map(count);
    assert!(warm_up[0].objects_created() > 0, "the first call makes the workspace: {warm_up:?}");
    for call in calls {
        let spent = count(call);
        eprintln!("a call of {} texts: {spent:?}", call.len());
        assert_eq!(spent.objects_created(), 0, "{} texts: {spent:?}", call.len());
        assert!(spent.uploads <= 2, "{} texts: {spent:?}", call.len());
        assert_eq!((spent.submits, spent.readbacks), (1, 1), "{} texts: {spent:?}", call.len());
    }
}
