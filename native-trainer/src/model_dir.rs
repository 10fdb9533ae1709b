//! Finds and reads a model folder from disk: the exported layout of docs/contracts.md section 2
//! (`OUT/` or `OUT/model/`) or a plain Hugging Face checkpoint folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tweetguard::manifest::Manifest;

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

    pub fn bytes(&self) -> tweetguard::ModelBytes<'_> {
        tweetguard::ModelBytes { config: &self.config, tokenizer: &self.tokenizer, weights: (&self.weights).into() }
    }
}
