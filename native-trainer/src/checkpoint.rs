//! Per-epoch checkpoints for `train --resume`. At the end of each epoch `train` writes
//! `OUT/checkpoints/epoch-N/`:
//!
//! - `model.safetensors` (f32, HF names), `config.json`, `tokenizer.json`: an HF checkpoint folder, so
//!   `eval`/`predict`/`export` take it as it is;
//! - `optimizer.safetensors`: the AdamW moments and step count (see [`crate::optim`]);
//! - `trainer_state.json`: epochs done, global step, seed, the loss and metrics so far, the training
//!   arguments and the SHA-256 of the starting weights.
//!
//! Shuffling and dropout are seeded from `seed + epoch`, so epochs done and the seed are all the random
//! state a resumed run needs. A checkpoint is written into a hidden staging folder and swapped into place
//! ([`crate::output::replace_dir`]), so a killed run leaves a whole checkpoint or none; only the newest
//! `keep` are kept. `trainer_state.json` records the SHA-256 of the weights and optimizer files, so a
//! checkpoint damaged later (a truncated copy, a bad disk) is recognised: `--resume` without a folder then
//! says why and falls back to the next older whole checkpoint.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::history::TrainingHistory;
use crate::optim::AdamW;
use crate::trainable::Trainable;

/// The folder under the output folder that holds the checkpoints.
pub const DIR: &str = "checkpoints";
const STATE: &str = "trainer_state.json";
const WEIGHTS: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
pub const FORMAT_VERSION: u32 = 1;

/// Training arguments that may change between a checkpoint and its resumption: where things are written,
/// where and in what precision the math runs, how validation is batched, and the checkpoint options themselves. Every other
/// argument shapes the trajectory (data, schedule, seed) and must match. The starting model is compared by
/// the SHA-256 of its weights, not by its path.
const MAY_CHANGE_ON_RESUME: [&str; 12] = [
    "model",
    "output_dir",
    "overwrite_output_dir",
    "device",
    "precision",
    "eval_batch_size",
    "validation_file",
    "eval_limit",
    "resume",
    "save_total_limit",
    "cross_validation",
    "calibrate_on_unseen_accounts",
];

/// `trainer_state.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainerState {
    pub format_version: u32,
    /// Epochs finished; a resumed run starts the next one.
    pub completed_epochs: usize,
    pub global_step: usize,
    /// Shuffling and dropout of epoch `e` (0-based) are seeded with `seed + e`.
    pub seed: u64,
    /// SHA-256 of the weights training started from.
    pub base_model_sha256: String,
    pub training_args: serde_json::Value,
    pub history: TrainingHistory,
    /// SHA-256 of the checkpoint's weight and optimizer files (written by [`save`]; absent in checkpoints
    /// of earlier builds, which are then checked only for a readable safetensors header).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub files_sha256: std::collections::BTreeMap<String, String>,
}

/// SHA-256 of a weights file, as hex.
pub fn fingerprint(weights: &[u8]) -> String {
    hex::encode(Sha256::digest(weights))
}

impl TrainerState {
    /// Refuses to continue from a different starting model or with settings that change the trajectory.
    pub fn ensure_resumable(&self, base_model_sha256: &str, training_args: &serde_json::Value) -> Result<()> {
        if self.base_model_sha256 != base_model_sha256 {
            bail!(
                "the checkpoint was trained from different weights than --model holds (SHA-256 {} then, {} now): \
                 resume with the model the run started from",
                short(&self.base_model_sha256),
                short(base_model_sha256)
            );
        }
        let (Some(then), Some(now)) = (self.training_args.as_object(), training_args.as_object()) else {
            bail!("the checkpoint's training arguments are not a JSON object");
        };
        let changed: Vec<String> = then
            .keys()
            .chain(now.keys())
            .filter(|key| !MAY_CHANGE_ON_RESUME.contains(&key.as_str()))
            .filter(|key| then.get(*key) != now.get(*key))
            .map(|key| {
                let show = |v: Option<&serde_json::Value>| v.map_or("unset".to_string(), |v| v.to_string());
                format!(
                    "--{}: {} in the checkpoint, {} now",
                    key.replace('_', "-"),
                    show(then.get(key)),
                    show(now.get(key))
                )
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !changed.is_empty() {
            bail!(
                "the checkpoint was made with other training settings ({}); resume with the same ones, or start a new run",
                changed.join("; ")
            );
        }
        Ok(())
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// A checkpoint read back into memory.
pub struct Checkpoint {
    pub state: TrainerState,
    /// f32 safetensors with HF names.
    pub weights: Vec<u8>,
    /// What [`AdamW::load_state`] takes.
    pub optimizer: Vec<u8>,
}

impl Checkpoint {
    pub fn read(dir: &Path) -> Result<Self> {
        let read =
            |name: &str| std::fs::read(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
        let state: TrainerState =
            serde_json::from_slice(&read(STATE)?).with_context(|| format!("parsing {}", dir.join(STATE).display()))?;
        if state.format_version != FORMAT_VERSION {
            bail!(
                "{} has checkpoint format {}; this build reads {FORMAT_VERSION}",
                dir.display(),
                state.format_version
            );
        }
        let (weights, optimizer) = (read(WEIGHTS)?, read(OPTIMIZER)?);
        for (name, bytes) in [(WEIGHTS, &weights), (OPTIMIZER, &optimizer)] {
            let path = dir.join(name);
            match state.files_sha256.get(name) {
                Some(expected) if *expected != fingerprint(bytes) => bail!(
                    "{} is damaged: its SHA-256 is {}, the checkpoint recorded {}",
                    path.display(),
                    short(&fingerprint(bytes)),
                    short(expected)
                ),
                _ => safetensors::SafeTensors::deserialize(bytes)
                    .map(drop)
                    .with_context(|| format!("{} is damaged (not a whole safetensors file)", path.display()))?,
            }
        }
        Ok(Self { state, weights, optimizer })
    }

    /// The checkpoint `--resume` means: `explicit` when it is a checkpoint folder (read as it is: a damaged
    /// one is an error), else the newest whole checkpoint under `explicit` or `out`. A newer checkpoint
    /// that cannot be read is skipped with a warning saying why, and the next older one is tried.
    pub fn open_for_resume(out: &Path, explicit: Option<&Path>) -> Result<(PathBuf, Self)> {
        let mut skipped = Vec::new();
        for dir in candidates(out, explicit)? {
            match Self::read(&dir) {
                Ok(checkpoint) => return Ok((dir, checkpoint)),
                Err(err) if explicit == Some(dir.as_path()) => return Err(err),
                Err(err) => {
                    tracing::warn!("skipping checkpoint {}: {err:#}; trying an older one", dir.display());
                    skipped.push(format!("{err:#}"));
                }
            }
        }
        bail!("nothing to resume: every checkpoint is damaged ({})", skipped.join("; "))
    }
}

/// Writes `OUT/checkpoints/epoch-N/` (N = `state.completed_epochs`) atomically, then deletes all but the
/// newest `keep` checkpoints (`keep` 0 keeps every one). Returns the checkpoint's folder.
pub fn save(
    out: &Path,
    state: &TrainerState,
    model: &Trainable,
    optimizer: &AdamW,
    tokenizer: &[u8],
    keep: usize,
) -> Result<PathBuf> {
    let done = out.join(DIR).join(format!("epoch-{}", state.completed_epochs));
    let (weights, moments) = (model.hf_safetensors()?, optimizer.state_safetensors()?);
    let mut state = state.clone();
    state.files_sha256 = [(WEIGHTS, &weights), (OPTIMIZER, &moments)]
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), fingerprint(bytes)))
        .collect();
    let files: [(&str, Vec<u8>); 5] = [
        (WEIGHTS, weights),
        (OPTIMIZER, moments),
        ("config.json", model.config.to_json().into_bytes()),
        ("tokenizer.json", tokenizer.to_vec()),
        (STATE, serde_json::to_vec_pretty(&state)?),
    ];
    // Built in a hidden staging folder (each file flushed to disk, the state last) and swapped in whole,
    // replacing a checkpoint of the same epoch from an earlier try: whole or absent even after a crash.
    crate::output::replace_dir(&done, |dir| {
        files.iter().try_for_each(|(file, bytes)| crate::output::write_atomic(&dir.join(file), bytes))
    })?;
    if keep > 0 {
        let all = list(out)?;
        for (_, stale) in &all[..all.len().saturating_sub(keep)] {
            std::fs::remove_dir_all(stale).with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    Ok(done)
}

/// Deletes every checkpoint of an output folder (a fresh run replacing an earlier one).
pub fn remove_all(out: &Path) -> Result<()> {
    let root = out.join(DIR);
    match std::fs::remove_dir_all(&root) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", root.display()))
        }
        _ => Ok(()),
    }
}

/// The complete checkpoints of an output folder as (epoch, folder), oldest first.
pub fn list(out: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let root = out.join(DIR);
    let Ok(entries) = std::fs::read_dir(&root) else { return Ok(Vec::new()) };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let epoch = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("epoch-"))
            .and_then(|n| n.parse().ok());
        if let Some(epoch) = epoch.filter(|_| path.join(STATE).is_file()) {
            found.push((epoch, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The checkpoints `--resume` may take, in the order to try them: `explicit` alone when it is a checkpoint
/// folder, else those of `explicit` (an output folder) or `out`, newest first.
fn candidates(out: &Path, explicit: Option<&Path>) -> Result<Vec<PathBuf>> {
    if let Some(dir) = explicit.filter(|d| d.join(STATE).is_file()) {
        return Ok(vec![dir.to_path_buf()]);
    }
    let search = explicit.unwrap_or(out);
    let newest_first: Vec<PathBuf> = list(search)?.into_iter().rev().map(|(_, dir)| dir).collect();
    if newest_first.is_empty() {
        bail!(
            "nothing to resume: {} is not a checkpoint folder and has no {DIR}/epoch-N/ with {STATE}",
            search.display()
        );
    }
    Ok(newest_first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(args: serde_json::Value) -> TrainerState {
        TrainerState {
            format_version: FORMAT_VERSION,
            completed_epochs: 1,
            global_step: 5,
            seed: 0,
            base_model_sha256: "ab".repeat(32),
            training_args: args,
            history: TrainingHistory::default(),
            files_sha256: Default::default(),
        }
    }

    #[test]
    fn resuming_checks_model_and_trajectory_settings() {
        let then =
            serde_json::json!({"learning_rate": 5e-5, "seed": 0, "device": "cpu", "output_dir": "a", "limit": null});
        let saved = state(then.clone());
        saved.ensure_resumable(&"ab".repeat(32), &then).unwrap();
        let elsewhere =
            serde_json::json!({"learning_rate": 5e-5, "seed": 0, "device": "cuda", "output_dir": "b", "limit": null});
        saved.ensure_resumable(&"ab".repeat(32), &elsewhere).unwrap();
        let changed =
            serde_json::json!({"learning_rate": 1e-4, "seed": 0, "device": "cpu", "output_dir": "a", "limit": 64});
        let err = saved.ensure_resumable(&"ab".repeat(32), &changed).unwrap_err().to_string();
        assert!(err.contains("--learning-rate: ") && err.contains("--limit: null in the checkpoint, 64 now"), "{err}");
        assert!(!err.contains("--device") && !err.contains("--output-dir"), "{err}");
        let err = saved.ensure_resumable(&"cd".repeat(32), &then).unwrap_err().to_string();
        assert!(err.contains("different weights"), "{err}");
    }

    #[test]
    fn finds_the_newest_complete_checkpoint() {
        let out = std::env::temp_dir().join(format!("tg-checkpoints-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        for name in ["epoch-2", "epoch-10", "epoch-9", ".epoch-11.partial", "epoch-12"] {
            std::fs::create_dir_all(out.join(DIR).join(name)).unwrap();
        }
        for name in ["epoch-2", "epoch-10", "epoch-9", ".epoch-11.partial"] {
            std::fs::write(out.join(DIR).join(name).join(STATE), "{}").unwrap();
        }
        let epochs: Vec<usize> = list(&out).unwrap().into_iter().map(|(e, _)| e).collect();
        assert_eq!(epochs, [2, 9, 10], "numeric order; partial and incomplete folders skipped");
        let newest_first = [10, 9, 2].map(|e| out.join(DIR).join(format!("epoch-{e}")));
        assert_eq!(candidates(&out, None).unwrap(), newest_first);
        assert_eq!(candidates(&out, Some(&out)).unwrap(), newest_first);
        let explicit = out.join(DIR).join("epoch-2");
        assert_eq!(candidates(Path::new("elsewhere"), Some(&explicit)).unwrap(), [explicit]);
        let err = candidates(&out.join("none"), None).unwrap_err().to_string();
        assert!(err.contains("nothing to resume"), "{err}");
        let _ = std::fs::remove_dir_all(&out);
    }
}
