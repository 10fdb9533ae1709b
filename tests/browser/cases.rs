//! Browser test cases, compiled to wasm and run in headless Chromium both on a page
//! (`browser_page.rs`) and in a dedicated worker (`browser_worker.rs`), as the product runs. They use the
//! tiny fixture BERT embedded with `include_bytes!` and its PyTorch goldens.

use js_sys::{Array, Object, Reflect, Uint8Array};
use serde::Deserialize;
use serde_json::Value;
use tweetguard::backend::int8::Isa;
use tweetguard::backend::CpuEngine;
use tweetguard::bindings::JsClassifier;
use tweetguard::tolerance::{Tolerance, DECISIVE_MARGIN, FLOAT, INT8_COMPUTE, WEBGPU};
use tweetguard::{Classifier, HeadInit, LoadOptions, ModelBytes};

#[path = "../common/encoder_reference.rs"]
mod encoder_reference;
#[path = "../common/int8_cases.rs"]
mod int8_cases;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

const CONFIG: &[u8] = include_bytes!("../fixtures/tiny/config.json");
const TOKENIZER: &[u8] = include_bytes!("../fixtures/tiny/tokenizer.json");
const WEIGHTS_F32: &[u8] = include_bytes!("../fixtures/tiny/model.safetensors");
const WEIGHTS_INT8: &[u8] = include_bytes!("../fixtures/tiny/model.int8.safetensors");
const GOLDENS: &[u8] = include_bytes!("../fixtures/tiny_goldens.json");

#[derive(Deserialize)]
struct Golden {
    text: String,
    ids: Vec<u32>,
    logits_f32: Vec<f32>,
    logits_int8ref: Vec<f32>,
}

async fn load_with(weights: &[u8], cpu_engine: CpuEngine) -> Classifier {
    let bytes = ModelBytes { config: CONFIG, tokenizer: TOKENIZER, weights: weights.into() };
    Classifier::load(bytes, LoadOptions { head: HeadInit::Require, cpu_engine, ..Default::default() })
        .await
        .expect("tiny model loads")
}

async fn load(weights: &[u8]) -> Classifier {
    load_with(weights, CpuEngine::Auto).await
}

/// Every logit of `model` on the golden texts within `tol` of `pick(golden)`, and decisive labels equal.
async fn check_goldens(model: &Classifier, pick: fn(&Golden) -> &Vec<f32>, tol: Tolerance) {
    let goldens: Vec<Golden> = serde_json::from_slice(GOLDENS).unwrap();
    let texts: Vec<&str> = goldens.iter().map(|g| g.text.as_str()).collect();
    let out = model.classify(&texts).await.unwrap();
    for (g, r) in goldens.iter().zip(&out.results) {
        assert_eq!(
            model.tokenizer().encode_batch(&[g.text.as_str()]).unwrap().row_ids(0),
            g.ids,
            "ids for {:?}",
            g.text
        );
        for (a, b) in r.logits.iter().zip(pick(g)) {
            assert!(tol.allows(*a, *b), "{:?}: logit {a} vs {b} (limit {})", g.text, tol.limit(*b));
        }
        let p = |l: &[f32]| 1.0 / (1.0 + (l[0] - l[1]).exp());
        if (p(pick(g)) - 0.5).abs() > DECISIVE_MARGIN {
            assert_eq!(p(&r.logits) > 0.5, p(pick(g)) > 0.5, "{:?}: label differs", g.text);
        }
    }
}

#[wasm_bindgen_test]
async fn f32_logits_match_pytorch() {
    check_goldens(&load(WEIGHTS_F32).await, |g| &g.logits_f32, FLOAT).await;
}

#[wasm_bindgen_test]
async fn int8_reference_logits_match_the_int8_reference() {
    check_goldens(&load_with(WEIGHTS_INT8, CpuEngine::Reference).await, |g| &g.logits_int8ref, FLOAT).await;
}

/// The int8 engine, as the page runs it, within its budget of the reference semantics; it says which
/// kernels ran: simd128 in the baseline build; in a relaxed build on an engine that computes the relaxed dot
/// products exactly, the fastest of the two relaxed kernels and simd128 by a race at load, whose times it reports.
#[wasm_bindgen_test]
async fn int8_engine_logits_match_the_int8_reference_within_its_budget() {
    let model = load(WEIGHTS_INT8).await;
    let info = model.info();
    let kernel = info.cpu_kernel.expect("the CPU path is built");
    if Isa::available().contains(&Isa::WasmRelaxed) {
        let raced = ["wasm-relaxed-simd", "wasm-relaxed-i16", "wasm-simd128"];
        assert!(raced.iter().any(|isa| kernel == format!("int8 {isa}")), "{kernel}");
        let reason = info.cpu_kernel_reason.expect("a race chose the kernels");
        assert!(raced.iter().all(|isa| reason.contains(&format!("{isa} "))), "{reason}");
        wasm_bindgen_test::console_log!("int8 kernels: {kernel} ({reason})");
    } else {
        assert_eq!(kernel, "int8 wasm-simd128");
        assert_eq!(info.cpu_kernel_reason, None, "nothing to race");
    }
    check_goldens(&model, |g| &g.logits_int8ref, INT8_COMPUTE).await;
}

/// A model with 64-value blocks (the tiny BERT's FFN down-projection): the int8 engine within its budget of
/// the reference semantics on the same weights, and WebGPU within its own where an adapter exists.
#[wasm_bindgen_test]
async fn a_model_in_64_value_blocks_stays_within_the_budgets_of_its_reference() {
    let weights = int8_cases::tiny_with_64_value_blocks(WEIGHTS_F32);
    let goldens: Vec<Golden> = serde_json::from_slice(GOLDENS).unwrap();
    let texts: Vec<&str> = goldens.iter().map(|g| g.text.as_str()).collect();
    let reference = load_with(&weights, CpuEngine::Reference).await.classify(&texts).await.unwrap();
    let int8 = load_with(&weights, CpuEngine::Int8).await.classify(&texts).await.unwrap();
    let gpu = match webgpu(&weights).await {
        Some(gpu) => Some(gpu.classify(&texts).await.unwrap()),
        None => None,
    };
    for (i, want) in reference.results.iter().enumerate() {
        for (j, y) in want.logits.iter().enumerate() {
            let x = int8.results[i].logits[j];
            assert!(INT8_COMPUTE.allows(x, *y), "row {i}: int8 engine {x} vs the reference {y}");
            if let Some(gpu) = &gpu {
                let x = gpu.results[i].logits[j];
                assert!(WEBGPU.allows(x, *y), "row {i}: WebGPU {x} vs the reference {y}");
            }
        }
    }
}

#[wasm_bindgen_test]
fn int8_kernels_match_the_scalar_reference_bit_for_bit() {
    int8_cases::every_kernel_matches_the_reference();
    int8_cases::integer_dot_products_are_exact();
    int8_cases::quantizer_keeps_zero_exact();
    int8_cases::quantizer_matches_the_portable_one_bit_for_bit();
}

#[wasm_bindgen_test]
fn vector_math_matches_the_scalar_functions_bit_for_bit() {
    int8_cases::vector_math_matches_the_scalar_functions_bit_for_bit();
}

fn files(weights: &[u8]) -> JsValue {
    let files = Object::new();
    for (key, bytes) in [("config", CONFIG), ("tokenizer", TOKENIZER), ("weights", weights)] {
        Reflect::set(&files, &key.into(), &Uint8Array::from(bytes).into()).unwrap();
    }
    files.into()
}

fn options(backend: &str) -> JsValue {
    let options = Object::new();
    Reflect::set(&options, &"backend".into(), &backend.into()).unwrap();
    options.into()
}

async fn js_load(files: JsValue, options: JsValue) -> Result<JsClassifier, JsValue> {
    JsClassifier::load(files, (!options.is_undefined()).then_some(options)).await.map_err(JsValue::from)
}

/// The rejection is a JS `Error` whose message contains `needle`.
fn assert_error(err: JsValue, needle: &str) {
    let error = err.dyn_ref::<js_sys::Error>().expect("rejections are Error objects");
    let message: String = error.message().into();
    assert!(message.contains(needle), "message {message:?} lacks {needle:?}");
}

async fn js_classify(model: &JsClassifier, texts: JsValue) -> Result<Value, JsValue> {
    let out = JsFuture::from(model.classify(texts)).await?;
    Ok(serde_wasm_bindgen::from_value(out).unwrap())
}

fn strings(texts: &[&str]) -> JsValue {
    texts.iter().map(|t| JsValue::from_str(t)).collect::<Array>().into()
}

#[wasm_bindgen_test]
async fn js_api_classifies() {
    let model = js_load(files(WEIGHTS_INT8), options("auto")).await.unwrap();
    let info: Value = serde_wasm_bindgen::from_value(model.info().unwrap()).unwrap();
    assert_eq!(info["labels"], serde_json::json!(["human", "bot"]));
    assert_eq!(info["dtype"], "int8");
    assert_eq!(info["maxLength"], 128);
    let heap = info["heapBytes"].as_u64().expect("wasm reports its heap");
    assert!(heap > 0 && heap.is_multiple_of(65_536), "heapBytes {heap} is not a whole number of wasm pages");
    let out = js_classify(&model, strings(&["hello world", "", &"long ".repeat(500)])).await.unwrap();
    assert_eq!(out["backend"], "cpu");
    assert!(out["fallbackReason"].is_string(), "auto must say why it did not use WebGPU");
    assert!(out["timings"]["inferMs"].as_f64().unwrap() >= 0.0);
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        let p = r["probabilities"].as_object().unwrap();
        let sum: f64 = p.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5);
        assert_eq!(r["score"], p[r["label"].as_str().unwrap()]);
    }
    assert_eq!(results[2]["truncated"], true);
    assert_eq!(results[0]["truncated"], false);
}

#[wasm_bindgen_test]
async fn js_strings_with_lone_surrogates_and_nul_are_classified() {
    let model = js_load(files(WEIGHTS_INT8), JsValue::UNDEFINED).await.unwrap();
    let texts = Array::new();
    texts.push(&js_sys::JsString::from_char_code1(0xD800).into()); // a lone high surrogate
    texts.push(&"\u{FFFD}".into());
    texts.push(&"a\0b\0".into());
    texts.push(&"ab".into());
    let out = js_classify(&model, texts.into()).await.unwrap();
    let results = out["results"].as_array().unwrap();
    // A lone surrogate reaches Rust as U+FFFD (WTF-16 to UTF-8 replacement); NUL is dropped by the
    // BERT normalizer.
    assert_eq!(results[0], results[1]);
    assert_eq!(results[2], results[3]);
}

#[wasm_bindgen_test]
async fn js_errors_are_error_objects() {
    assert_error(js_load(JsValue::from_str("nope"), JsValue::UNDEFINED).await.err().unwrap(), "expected an object");
    let missing = Object::new();
    Reflect::set(&missing, &"config".into(), &Uint8Array::from(CONFIG).into()).unwrap();
    assert_error(
        js_load(missing.into(), JsValue::UNDEFINED).await.err().unwrap(),
        "files.tokenizer must be a Uint8Array",
    );
    assert_error(js_load(files(&WEIGHTS_INT8[..1000]), JsValue::UNDEFINED).await.err().unwrap(), "safetensors");
    let mut flipped = WEIGHTS_INT8.to_vec();
    flipped[20] ^= 0x40; // inside the JSON header
    assert!(js_load(files(&flipped), JsValue::UNDEFINED).await.is_err());
    assert_error(js_load(files(WEIGHTS_INT8), options("gpu")).await.err().unwrap(), "unknown backend");
    let model = js_load(files(WEIGHTS_INT8), JsValue::UNDEFINED).await.unwrap();
    assert_error(js_classify(&model, JsValue::from_f64(3.0)).await.err().unwrap(), "array of strings");
    let mixed: Array = [JsValue::from_str("ok"), JsValue::from_f64(1.0)].into_iter().collect();
    assert_error(js_classify(&model, mixed.into()).await.err().unwrap(), "array of strings");
    // The model stays usable after errors.
    assert!(js_classify(&model, strings(&["still works"])).await.is_ok());
}

#[wasm_bindgen_test]
async fn mismatched_config_and_tokenizer_are_rejected() {
    let mut config: Value = serde_json::from_slice(CONFIG).unwrap();
    config["intermediate_size"] = 64.into();
    let bytes = serde_json::to_vec(&config).unwrap();
    let err = Classifier::load(
        ModelBytes { config: &bytes, tokenizer: TOKENIZER, weights: WEIGHTS_INT8.into() },
        LoadOptions::default(),
    )
    .await;
    assert!(err.err().unwrap().to_string().contains("do not belong together"));
    let mut tokenizer: Value = serde_json::from_slice(TOKENIZER).unwrap();
    let vocab = tokenizer["model"]["vocab"].as_object_mut().unwrap();
    let n = vocab.len();
    vocab.insert("beyond-the-table".into(), (n + 100).into());
    let bytes = serde_json::to_vec(&tokenizer).unwrap();
    let err = Classifier::load(
        ModelBytes { config: CONFIG, tokenizer: &bytes, weights: WEIGHTS_INT8.into() },
        LoadOptions::default(),
    )
    .await;
    assert!(err.err().unwrap().to_string().contains("embedding table"));
}

#[wasm_bindgen_test]
async fn huge_and_empty_texts() {
    let model = load(WEIGHTS_INT8).await;
    let huge = "tweet ".repeat(20_000);
    let out = model.classify(&["", " \n ", huge.as_str()]).await.unwrap();
    assert!(out.results[2].truncated);
    assert_eq!(out.results[0].logits, out.results[1].logits);
}

/// Whether this browser has the WebGPU API at all (`navigator.gpu`, on a page or in a worker): Firefox ESR
/// has none.
fn browser_has_webgpu() -> bool {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    !navigator.is_undefined() && Reflect::get(&navigator, &"gpu".into()).is_ok_and(|gpu| !gpu.is_undefined())
}

/// A visible skip where the browser has no WebGPU API; where it has one but offers no adapter, the same
/// skip, except in a build with `CI=true` (headless Chromium there must offer SwiftShader), which fails.
fn skip_without_webgpu(why: &str) {
    if browser_has_webgpu() {
        assert!(option_env!("CI").is_none(), "CI=true but this browser offers no WebGPU adapter: {why}");
    }
    wasm_bindgen_test::console_log!("SKIPPED: no WebGPU adapter in this browser ({why})");
}

/// The forced-WebGPU classifier on the browser's adapter (SwiftShader in headless Chromium), or `None`
/// after [`skip_without_webgpu`].
async fn webgpu(weights: &[u8]) -> Option<Classifier> {
    let bytes = ModelBytes { config: CONFIG, tokenizer: TOKENIZER, weights: weights.into() };
    let options = LoadOptions { backend: tweetguard::BackendChoice::WebGpu, ..Default::default() };
    match Classifier::load(bytes, options).await {
        Ok(classifier) => Some(classifier),
        Err(err) => {
            skip_without_webgpu(&err.to_string());
            None
        }
    }
}

#[wasm_bindgen_test]
async fn webgpu_f32_logits_match_pytorch_within_1e_3() {
    let Some(model) = webgpu(WEIGHTS_F32).await else { return };
    let goldens: Vec<Golden> = serde_json::from_slice(GOLDENS).unwrap();
    let texts: Vec<&str> = goldens.iter().map(|g| g.text.as_str()).collect();
    let out = model.classify(&texts).await.unwrap();
    assert_eq!(out.backend, tweetguard::BackendKind::WebGpu, "{:?}", out.fallback_reason);
    for (g, r) in goldens.iter().zip(&out.results) {
        for (a, b) in r.logits.iter().zip(&g.logits_f32) {
            assert!(WEBGPU.allows(*a, *b), "WebGPU f32 {a} vs PyTorch {b}");
        }
    }
}

#[wasm_bindgen_test]
async fn webgpu_int8_matches_the_cpu_reference_and_auto_skips_a_software_adapter() {
    let Some(gpu) = webgpu(WEIGHTS_INT8).await else { return };
    let reference = load_with(WEIGHTS_INT8, CpuEngine::Reference).await;
    let cpu = load(WEIGHTS_INT8).await;
    let goldens: Vec<Golden> = serde_json::from_slice(GOLDENS).unwrap();
    let texts: Vec<&str> = goldens.iter().map(|g| g.text.as_str()).collect();
    let (g, r, c) = (
        gpu.classify(&texts).await.unwrap(),
        reference.classify(&texts).await.unwrap(),
        cpu.classify(&texts).await.unwrap(),
    );
    assert_eq!(g.backend, tweetguard::BackendKind::WebGpu);
    for (i, (a, b)) in g.results.iter().zip(&r.results).enumerate() {
        for (x, y) in a.logits.iter().zip(&b.logits) {
            assert!(WEBGPU.allows(*x, *y), "row {i}: WebGPU {x} vs the CPU reference {y}");
        }
        if (b.score - 0.5).abs() > DECISIVE_MARGIN {
            assert_eq!(a.label, b.label, "row {i}");
        }
    }
    // Headless Chromium's only adapter is SwiftShader, a fallback (CPU) adapter whose name the browser
    // hides: auto keeps the CPU path and says why.
    assert_eq!(c.backend, tweetguard::BackendKind::Cpu);
    let reason = c.fallback_reason.unwrap_or_default();
    assert!(reason.contains("CPU/software"), "{reason}");
    // A lost device hands over to the CPU with the same answers (up to float rounding: the call that
    // finds the device lost still batches as the GPU would).
    gpu.simulate_device_loss();
    let after = gpu.classify(&texts).await.unwrap();
    assert_eq!(after.backend, tweetguard::BackendKind::Cpu);
    assert!(after.fallback_reason.unwrap().contains("lost"));
    for (a, b) in after.results.iter().zip(&c.results) {
        for (x, y) in a.logits.iter().zip(&b.logits) {
            assert!((x - y).abs() <= 1e-5, "after the loss {x} vs CPU {y}");
        }
    }
}

/// Wraps the browser's `GPUDevice`, `GPUQueue` and `GPUBuffer` methods that cost (objects created,
/// uploads, submits, readbacks) with counters, once per JS realm, and returns the counts object.
fn browser_webgpu_counters() -> Object {
    let install = js_sys::Function::new_no_args(
        r#"
        if (globalThis.__webgpuCalls) return globalThis.__webgpuCalls;
        const calls = {};
        const wrap = (proto, name) => {
            calls[name] = 0;
            const original = proto[name];
            proto[name] = function (...args) { calls[name]++; return original.apply(this, args); };
        };
        for (const name of ["createBuffer", "createBindGroup", "createBindGroupLayout", "createPipelineLayout",
                            "createComputePipeline", "createShaderModule"]) wrap(GPUDevice.prototype, name);
        wrap(GPUQueue.prototype, "writeBuffer");
        wrap(GPUQueue.prototype, "submit");
        wrap(GPUBuffer.prototype, "mapAsync");
        globalThis.__webgpuCalls = calls;
        return calls;
        "#,
    );
    install.call0(&JsValue::NULL).expect("WebGPU's prototypes can be wrapped").unchecked_into()
}

/// The browser's counts as [`tweetguard::backend::webgpu::ApiCounts`].
fn browser_counts(calls: &Object) -> tweetguard::backend::webgpu::ApiCounts {
    let get = |name: &str| Reflect::get(calls, &name.into()).unwrap().as_f64().unwrap() as u64;
    tweetguard::backend::webgpu::ApiCounts {
        buffers: get("createBuffer"),
        bind_groups: get("createBindGroup"),
        layouts: get("createBindGroupLayout") + get("createPipelineLayout"),
        pipelines: get("createComputePipeline"),
        shader_modules: get("createShaderModule"),
        uploads: get("writeBuffer"),
        submits: get("submit"),
        readbacks: get("mapAsync"),
    }
}

/// The per-call WebGPU budget in the browser, counted twice: by the backend, and by wrappers around the
/// browser's own `GPUDevice`/`GPUQueue`/`GPUBuffer` methods (so the backend's counters cannot
/// flatter it). Once the workspace has grown to a call's size, a call creates no object, uploads at most
/// twice, submits once and reads back once, whether it is one pass or several.
#[wasm_bindgen_test]
async fn webgpu_calls_after_warm_up_create_nothing_and_submit_and_read_back_once() {
    if !browser_has_webgpu() {
        return skip_without_webgpu("no navigator.gpu");
    }
    let calls = browser_webgpu_counters();
    let bytes = ModelBytes { config: CONFIG, tokenizer: TOKENIZER, weights: WEIGHTS_INT8.into() };
    let options = LoadOptions { backend: tweetguard::BackendChoice::WebGpu, batch_size: Some(8), ..Default::default() };
    let gpu = match Classifier::load(bytes, options).await {
        Ok(classifier) => classifier,
        Err(err) => return skip_without_webgpu(&err.to_string()),
    };
    let goldens: Vec<Golden> = serde_json::from_slice(GOLDENS).unwrap();
    let texts: Vec<&str> = goldens.iter().map(|g| g.text.as_str()).cycle().take(30).collect();
    let shapes = [&texts[..], &texts[..8], &texts[..1]];
    for shape in shapes {
        gpu.classify(shape).await.unwrap();
    }
    for shape in shapes {
        let (ours, browsers) = (gpu.gpu_counts().unwrap(), browser_counts(&calls));
        let out = gpu.classify(shape).await.unwrap();
        assert_eq!(out.backend, tweetguard::BackendKind::WebGpu, "{:?}", out.fallback_reason);
        let (ours, browsers) = (gpu.gpu_counts().unwrap().since(ours), browser_counts(&calls).since(browsers));
        wasm_bindgen_test::console_log!("a call of {} texts: {ours:?}", shape.len());
        assert_eq!(ours, browsers, "the backend's counts and the browser's differ");
        assert_eq!(ours.objects_created(), 0, "{} texts: {ours:?}", shape.len());
        assert!(ours.uploads <= 2, "{} texts: {ours:?}", shape.len());
        assert_eq!((ours.submits, ours.readbacks), (1, 1), "{} texts: {ours:?}", shape.len());
    }
}

/// Our encoder against candle-transformers' `BertModel` on the wasm build (the native test runs it on
/// MiniLM too): the tiny fixture's last hidden states, padding included, within `tolerance::FLOAT`.
#[wasm_bindgen_test]
fn encoder_matches_candle_transformers_on_wasm() {
    let summary = encoder_reference::compare("tiny (wasm)", CONFIG, TOKENIZER, WEIGHTS_F32.to_vec());
    wasm_bindgen_test::console_log!("{summary}");
}
