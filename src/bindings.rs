//! The JavaScript API (docs/contracts.md, section 3): `Classifier.load`, `classify`, `info`. The only module
//! that touches `JsValue`. Every failure becomes a rejected promise or a thrown JS `Error` with a message;
//! a panic hook logs any bug instead of leaving a bare trap.

use std::rc::Rc;

use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::backend::BackendChoice;
use crate::classifier::{Classifier, LoadOptions, ModelBytes};
use crate::weights::HeadInit;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** The three files of a model folder, as bytes. */
export interface ModelFiles { config: Uint8Array; tokenizer: Uint8Array; weights: Uint8Array; }
/** Options of `Classifier.load`. */
export interface LoadOptions {
  backend?: "auto" | "webgpu" | "cpu";
  /** Token limit per text (special tokens included); default 128. */
  maxLength?: number;
  /** Calibration temperature from the model's manifest; default 1. */
  temperature?: number;
  /** Texts per forward pass (a call's texts are sorted by length first); default 64 (4 on the f32 reference engine). */
  batchSize?: number;
  /** Initialise a missing classifier head at random (an untrained model, for testing only). */
  randomHeadSeed?: number;
}
export interface Prediction { label: string; score: number; probabilities: { [label: string]: number }; truncated: boolean; }
export interface ClassifyOutput {
  backend: "webgpu" | "cpu";
  fallbackReason?: string;
  timings: { tokenizeMs: number; inferMs: number };
  results: Prediction[];
}
export interface ClassifierInfo {
  labels: string[]; maxLength: number; dtype: string; backend: "webgpu" | "cpu"; adapter?: string;
  untrainedHead: boolean; temperature: number;
  /** What computes the CPU path's logits, e.g. "int8 wasm-relaxed-simd"; absent while only the GPU is loaded. */
  cpuKernel?: string;
  /** Why those kernels, where a short race at load chose them, with its times. */
  cpuKernelReason?: string;
  /** False in a development build of the wasm module (the benchmark page refuses to time one). */
  optimized: boolean;
  /** Bytes of wasm memory after load (its high-water mark). */
  heapBytes?: number;
}
"#;

/// A thrown `Error` with `message` (every failure that crosses to JS is one; `?` on this crate's errors
/// makes one too).
fn error(message: impl std::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

fn get(object: &JsValue, key: &str) -> Result<JsValue, JsError> {
    if !object.is_object() {
        return Err(error(format!("expected an object with {key:?}")));
    }
    Reflect::get(object, &JsValue::from_str(key)).map_err(|_| error(format!("could not read {key:?}")))
}

fn bytes_field(files: &JsValue, key: &str) -> Result<Vec<u8>, JsError> {
    let value = get(files, key)?;
    value
        .dyn_ref::<Uint8Array>()
        .map(Uint8Array::to_vec)
        .ok_or_else(|| error(format!("files.{key} must be a Uint8Array")))
}

fn number_field(options: &JsValue, key: &str) -> Result<Option<f64>, JsError> {
    if options.is_undefined() || options.is_null() {
        return Ok(None);
    }
    let value = get(options, key)?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value.as_f64().map(Some).ok_or_else(|| error(format!("options.{key} must be a number")))
}

fn whole_number(value: Option<f64>, key: &str) -> Result<Option<usize>, JsError> {
    match value {
        None => Ok(None),
        Some(v) if v.fract() == 0.0 && (1.0..=1e9).contains(&v) => Ok(Some(v as usize)),
        Some(v) => Err(error(format!("options.{key} must be a positive whole number, got {v}"))),
    }
}

fn parse_options(options: &JsValue) -> Result<LoadOptions, JsError> {
    let mut parsed = LoadOptions::default();
    if !(options.is_undefined() || options.is_null()) {
        let backend = get(options, "backend")?;
        if let Some(name) = backend.as_string() {
            parsed.backend = name.parse::<BackendChoice>()?;
        } else if !backend.is_undefined() {
            return Err(error("options.backend must be \"auto\", \"webgpu\" or \"cpu\""));
        }
    }
    parsed.max_length = whole_number(number_field(options, "maxLength")?, "maxLength")?;
    parsed.temperature = number_field(options, "temperature")?.map(|t| t as f32);
    if let Some(size) = whole_number(number_field(options, "batchSize")?, "batchSize")? {
        parsed.batch_size = Some(size);
    }
    if let Some(seed) = number_field(options, "randomHeadSeed")? {
        parsed.head = HeadInit::RandomIfMissing { seed: seed as u64 };
    }
    Ok(parsed)
}

fn texts_of(texts: JsValue) -> Result<Vec<String>, JsError> {
    serde_wasm_bindgen::from_value(texts).map_err(|_| error("texts must be an array of strings"))
}

fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsError> {
    Ok(value.serialize(&serde_wasm_bindgen::Serializer::json_compatible())?)
}

/// A promise of what `work` gives, rejected with its `Error`.
fn promise(work: impl std::future::Future<Output = Result<JsValue, JsError>> + 'static) -> Promise {
    future_to_promise(async move { work.await.map_err(JsValue::from) })
}

/// A BERT bot-or-human classifier running in this page or worker.
#[wasm_bindgen(js_name = Classifier)]
pub struct JsClassifier {
    inner: Rc<Classifier>,
}

#[wasm_bindgen(js_class = Classifier)]
impl JsClassifier {
    /// Loads a model from the bytes of its files. Rejects with an `Error` that says what is wrong when
    /// the files are corrupt or do not belong together.
    pub async fn load(
        #[wasm_bindgen(unchecked_param_type = "ModelFiles")] files: JsValue,
        #[wasm_bindgen(unchecked_param_type = "LoadOptions")] options: Option<JsValue>,
    ) -> Result<JsClassifier, JsError> {
        console_error_panic_hook::set_once();
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let config = bytes_field(&files, "config")?;
        let tokenizer = bytes_field(&files, "tokenizer")?;
        let weights = bytes_field(&files, "weights")?;
        let options = parse_options(&options)?;
        let bytes = ModelBytes { config: &config, tokenizer: &tokenizer, weights: weights.into() };
        let classifier = Classifier::load(bytes, options).await?;
        Ok(JsClassifier { inner: Rc::new(classifier) })
    }

    /// Classifies texts; resolves to labels, calibrated scores, the backend that ran and timings.
    #[wasm_bindgen(unchecked_return_type = "Promise<ClassifyOutput>")]
    pub fn classify(&self, #[wasm_bindgen(unchecked_param_type = "string[]")] texts: JsValue) -> Promise {
        let inner = self.inner.clone();
        promise(async move { to_js(&inner.classify(&texts_of(texts)?).await?) })
    }

    /// The time of each kernel of one pass over `texts` (benchmarks): `[{kernel, ms}]` in pass order; GPU
    /// time per dispatch on WebGPU, wall time per operation on the int8 CPU engine.
    #[wasm_bindgen(unchecked_return_type = "Promise<Array<{ kernel: string; ms: number }>>")]
    pub fn profile(&self, #[wasm_bindgen(unchecked_param_type = "string[]")] texts: JsValue) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let kernels = inner.profile(&texts_of(texts)?).await?;
            #[derive(serde::Serialize)]
            struct Kernel {
                kernel: &'static str,
                ms: f64,
            }
            to_js(&kernels.into_iter().map(|(kernel, ms)| Kernel { kernel, ms }).collect::<Vec<_>>())
        })
    }

    /// Labels, maximum length, weight dtype and backend of the loaded model.
    #[wasm_bindgen(unchecked_return_type = "ClassifierInfo")]
    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.info())
    }
}
