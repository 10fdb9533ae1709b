//! # tweetguard
//!
//! Tells bot-written tweets from human ones with a fine-tuned BERT that runs where the tweets are: in the
//! browser (WebGPU compute shaders on a real GPU, wasm SIMD on the CPU otherwise) or natively. The crate
//! is built as a `cdylib` for the browser and as an `rlib` that the trainer and the tests share.
//!
//! Layout: [`config`] (the model's `config.json`), [`tokenize`] (texts to ids; [`tweet_text`]: mentions and
//! links to placeholders, inside the tokenizer), [`weights`] (safetensors
//! and the int8 format), [`pass`] (BERT's order of operations, once, which every engine follows),
//! [`model`] (the candle definition that training and the reference engine run), [`backend`] (where it
//! runs: the int8 CPU engine, candle's f32 CPU path, WebGPU),
//! [`postprocess`] (logits to labels), [`classifier`] (the public API), and `bindings` (the JS API, wasm
//! only). The core reads bytes only: files and the network belong to its callers.
//!
//! ```no_run
//! # async fn demo(config: &[u8], tokenizer: &[u8], weights: &[u8]) -> tweetguard::Result<()> {
//! use tweetguard::{Classifier, LoadOptions, ModelBytes};
//! let classifier = Classifier::load(ModelBytes { config, tokenizer, weights: weights.into() }, LoadOptions::default()).await?;
//! let out = classifier.classify(&["just setting up my twttr"]).await?;
//! println!("{} {:.3} on {:?}", out.results[0].label, out.results[0].score, out.backend);
//! # Ok(()) }
//! ```

pub mod backend;
pub mod classifier;
pub mod config;
pub mod error;
pub mod manifest;
pub mod math;
pub mod model;
pub mod pass;
pub mod postprocess;
pub mod tokenize;
pub mod tolerance;
pub mod tweet_text;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod bindings;

pub use backend::{BackendChoice, BackendKind};
pub use classifier::{Classification, Classifier, LoadOptions, ModelBytes, ModelInfo, Timings};
pub use config::BertConfig;
pub use error::{Error, Result};
pub use postprocess::Prediction;
pub use weights::HeadInit;
