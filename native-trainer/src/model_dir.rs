//! Finds and reads a model folder from disk: the exported layout of docs/contracts.md section 2
//! (`OUT/` or `OUT/model/`) or a plain Hugging Face checkpoint folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tweetguard::backend::CpuEngine;
use tweetguard::manifest::Manifest;
use tweetguard::{BackendChoice, Classifier, HeadInit, LoadOptions};

/// The flags of every command that runs a model folder: which folder, and what runs it.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// Model folder: an exported OUT/ or OUT/model/, or a Hugging Face classification checkpoint.
    #[arg(long)]
    pub model: PathBuf,
    /// Inference backend: auto, webgpu or cpu.
    #[arg(long, default_value = "auto")]
    pub backend: BackendChoice,
    /// CPU engine: auto (int8 engine for int8 models, f32 reference otherwise), int8 or reference.
    #[arg(long, default_value = "auto")]
    pub cpu_engine: CpuEngine,
    /// Maximum tokens per text, special tokens included; default: the manifest's, else 128.
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Texts per forward pass; default: the backend's (64 on the int8 engine and WebGPU, 4 on the f32
    /// reference engine).
    #[arg(long)]
    pub batch_size: Option<usize>,
}

impl ModelArgs {
    /// Reads the folder and loads it with these flags (the int8 weights first).
    pub fn load(&self, head: HeadInit) -> Result<(ModelFiles, Classifier)> {
        let files = ModelFiles::read(&self.model)?;
        let options = LoadOptions {
            backend: self.backend,
            cpu_engine: self.cpu_engine,
            max_length: self.max_length,
            batch_size: self.batch_size,
            head,
            ..Default::default()
        };
        let classifier = files.classifier(options)?;
        Ok((files, classifier))
    }
}

/// The files of one model, read into memory.
pub struct ModelFiles {
    pub dir: PathBuf,
    pub config: Vec<u8>,
    pub tokenizer: Vec<u8>,
    pub weights: Vec<u8>,
    pub weights_name: &'static str,
    /// `manifest.json`, when the folder has one (an export's `model/`); its files were checked against it.
    pub manifest: Option<Manifest>,
}

/// Weight files in order of preference for inference (the int8 file the browser runs first) and for
/// training (full precision first).
const FOR_INFERENCE: [&str; 2] = ["model.int8.safetensors", "model.safetensors"];
const FOR_TRAINING: [&str; 2] = ["model.safetensors", "model.int8.safetensors"];

impl ModelFiles {
    /// Reads `dir` (or `dir/model` when that is where the model lives), int8 weights first.
    pub fn read(dir: &Path) -> Result<Self> {
        Self::read_with(dir, FOR_INFERENCE)
    }

    /// Reads a checkpoint to fine-tune, full-precision weights first (`dir/hf` of an export included).
    pub fn read_for_training(dir: &Path) -> Result<Self> {
        let hf = dir.join("hf");
        Self::read_with(if hf.join("model.safetensors").is_file() { &hf } else { dir }, FOR_TRAINING)
    }

    fn read_with(dir: &Path, preference: [&'static str; 2]) -> Result<Self> {
        let dir = if dir.join("model").join("config.json").is_file() { dir.join("model") } else { dir.to_path_buf() };
        let read =
            |name: &str| std::fs::read(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
        let Some(weights_name) = preference.into_iter().find(|f| dir.join(f).is_file()) else {
            bail!("{} has no {} or {}", dir.display(), preference[0], preference[1]);
        };
        let manifest = match std::fs::read(dir.join("manifest.json")) {
            Ok(bytes) => Some(
                Manifest::parse(&bytes).with_context(|| format!("reading {}", dir.join("manifest.json").display()))?,
            ),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.join("manifest.json").display())),
        };
        let files = Self {
            config: read("config.json")?,
            tokenizer: read("tokenizer.json")?,
            weights: read(weights_name)?,
            weights_name,
            manifest,
            dir,
        };
        if let Some(manifest) = &files.manifest {
            // As the page does: the files must be the ones the export listed.
            for (name, bytes) in
                [("config.json", &files.config), ("tokenizer.json", &files.tokenizer), (weights_name, &files.weights)]
            {
                manifest
                    .verify(name, bytes)
                    .with_context(|| format!("checking {} against its manifest", files.dir.display()))?;
            }
        }
        Ok(files)
    }

    /// Calibration temperature from `manifest.json`, when the folder has one.
    pub fn temperature(&self) -> Option<f32> {
        self.manifest.as_ref().and_then(Manifest::temperature)
    }

    /// The maximum length the model was exported with (the manifest's), unless the caller gives one.
    pub fn max_length(&self, requested: Option<usize>) -> Option<usize> {
        requested.or_else(|| self.manifest.as_ref().and_then(|m| m.max_length))
    }

    /// Loads the model through the core with `options`, the manifest's temperature and maximum length
    /// filling what they leave unset: the settings the page applies to the same folder.
    pub fn classifier(&self, options: LoadOptions) -> Result<Classifier> {
        let options = LoadOptions {
            temperature: options.temperature.or_else(|| self.temperature()),
            max_length: self.max_length(options.max_length),
            ..options
        };
        pollster::block_on(Classifier::load(self.bytes(), options))
            .with_context(|| format!("loading the model in {}", self.dir.display()))
    }

    pub fn bytes(&self) -> tweetguard::ModelBytes<'_> {
        tweetguard::ModelBytes { config: &self.config, tokenizer: &self.tokenizer, weights: (&self.weights).into() }
    }
}
