//! Model configuration: the subset of Hugging Face's `BertConfig` this crate runs, plus the label names
//! (`id2label`). Parsed from `config.json` and validated before any tensor is allocated, so a hostile or
//! mistyped config fails with a message instead of a giant allocation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Upper bounds that keep a malformed config from asking for absurd allocations.
const MAX_HIDDEN: usize = 8192;
const MAX_LAYERS: usize = 96;
const MAX_VOCAB: usize = 1 << 20;
const MAX_POSITIONS: usize = 8192;

/// The activation of the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenAct {
    /// Exact GELU, `x * Φ(x)` with `erf` (HF `"gelu"`).
    Gelu,
    /// The tanh approximation (HF `"gelu_new"`, `"gelu_pytorch_tanh"`).
    #[serde(alias = "gelu_pytorch_tanh")]
    GeluNew,
    Relu,
}

/// A BERT sequence classifier's configuration, as in HF `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: HiddenAct,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Dropout before the classifier; HF falls back to `hidden_dropout_prob` when absent.
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "default_position_type")]
    pub position_embedding_type: String,
    /// Class index (as a decimal string, HF style) to label name.
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
    #[serde(default)]
    pub label2id: BTreeMap<String, usize>,
    /// Everything else in `config.json`, kept so a round trip loses nothing.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init_range() -> f64 {
    0.02
}
fn default_position_type() -> String {
    "absolute".into()
}

/// The labels of the product's task, index 0 and 1, used when a config names none (a bare checkpoint).
pub const DEFAULT_LABELS: [&str; 2] = ["human", "bot"];

impl BertConfig {
    /// Parses and validates `config.json` bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let config: Self = serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("config.json: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Serialises back to pretty JSON (HF-compatible).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a BertConfig always serialises")
    }

    /// Checks sizes for consistency and sanity.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        let dims = [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_HIDDEN),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_HIDDEN),
            ("intermediate_size", self.intermediate_size, 8 * MAX_HIDDEN),
            ("max_position_embeddings", self.max_position_embeddings, MAX_POSITIONS),
            ("type_vocab_size", self.type_vocab_size, 64),
        ];
        for (name, value, max) in dims {
            if value == 0 || value > max {
                return bad(format!("{name} = {value} is outside 1..={max}"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.position_embedding_type != "absolute" {
            return bad(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return bad(format!("layer_norm_eps {} is outside (0, 1)", self.layer_norm_eps));
        }
        if self.pad_token_id >= self.vocab_size {
            return bad(format!("pad_token_id {} >= vocab_size {}", self.pad_token_id, self.vocab_size));
        }
        self.labels().map(|_| ())
    }

    /// Label names by class index. A config without `id2label` gets the product's two labels.
    pub fn labels(&self) -> Result<Vec<String>> {
        if self.id2label.is_empty() {
            return Ok(DEFAULT_LABELS.iter().map(|s| s.to_string()).collect());
        }
        let mut labels = vec![None; self.id2label.len()];
        for (key, name) in &self.id2label {
            let index: usize =
                key.parse().map_err(|_| Error::Config(format!("id2label key {key:?} is not an integer")))?;
            let slot = labels.get_mut(index).ok_or_else(|| {
                Error::Config(format!("id2label indices must be 0..{}, found {index}", self.id2label.len()))
            })?;
            if slot.replace(name.clone()).is_some() {
                return Err(Error::Config(format!("id2label names index {index} twice (key {key:?})")));
            }
        }
        if labels.len() < 2 {
            return Err(Error::Config("a classifier needs at least two labels".into()));
        }
        // n distinct indices below n: every slot is filled.
        Ok(labels.into_iter().flatten().collect())
    }

    /// Sets `id2label`/`label2id` from label names.
    pub fn set_labels(&mut self, labels: &[&str]) {
        self.id2label = labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.to_string())).collect();
        self.label2id = labels.iter().enumerate().map(|(i, l)| (l.to_string(), i)).collect();
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}
