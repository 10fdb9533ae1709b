//! The BERT inference pass, written once for every inference backend: the order of operations of HF's
//! `BertForSequenceClassification` in eval mode, against a small set of operations ([`Ops`]) that each
//! backend implements, and the one place that names the tensors each operation reads ([`Linear`],
//! [`Norm`], [`EMBEDDING_TABLES`]). The candle model in [`crate::model`] is the independent reference the
//! tests hold every backend to.
//!
//! ```text
//! embed (word + position + token type, LayerNorm)            -> Hidden
//! per layer:  Qkv linear                 Hidden       -> Qkv
//!             attention                  Qkv          -> Context
//!             attention-output linear,   Context      -> Attended      (+ Hidden, LayerNorm)
//!             intermediate linear, act   Attended     -> Intermediate
//!             output linear,             Intermediate -> Hidden        (+ Attended, LayerNorm)
//! pooler linear, tanh                    Hidden [CLS] -> Pooled
//! classifier linear                      Pooled       -> Logits
//! ```
//!
//! Only the `[CLS]` row reaches the pooler, so a backend may compute the last layer's attention
//! queries and everything after them for that row alone ([`Rows::Cls`]); keys and values still span every
//! token.

use crate::config::BertConfig;

/// A linear layer (weight `[out, in]` and bias) of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Linear {
    /// Query, key and value projections of a layer, stacked into one `[3 * hidden, hidden]` matrix.
    Qkv(usize),
    AttentionOutput(usize),
    Intermediate(usize),
    Output(usize),
    Pooler,
    Classifier,
}

impl Linear {
    /// HF names (without `.weight`/`.bias`) of the matrices stacked row-wise into this layer.
    pub fn parts(self) -> Vec<String> {
        let layer = |i: usize, rest: &str| format!("encoder.layer.{i}.{rest}");
        match self {
            Linear::Qkv(i) => {
                ["query", "key", "value"].iter().map(|p| layer(i, &format!("attention.self.{p}"))).collect()
            }
            Linear::AttentionOutput(i) => vec![layer(i, "attention.output.dense")],
            Linear::Intermediate(i) => vec![layer(i, "intermediate.dense")],
            Linear::Output(i) => vec![layer(i, "output.dense")],
            Linear::Pooler => vec!["pooler.dense".into()],
            Linear::Classifier => vec!["classifier".into()],
        }
    }

    /// `(out, in)`: rows and columns of the (stacked) weight matrix.
    pub fn shape(self, config: &BertConfig, labels: usize) -> (usize, usize) {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        match self {
            Linear::Qkv(_) => (3 * h, h),
            Linear::AttentionOutput(_) | Linear::Pooler => (h, h),
            Linear::Intermediate(_) => (i, h),
            Linear::Output(_) => (h, i),
            Linear::Classifier => (labels, h),
        }
    }

    /// What a profile calls its kernel.
    pub fn role(self) -> &'static str {
        match self {
            Linear::Qkv(_) => "qkv",
            Linear::AttentionOutput(_) => "attention output",
            Linear::Intermediate(_) => "intermediate + activation",
            Linear::Output(_) => "output",
            Linear::Pooler => "pooler",
            Linear::Classifier => "classifier",
        }
    }

    /// Every linear layer of a model with `layers` encoder layers, in pass order.
    pub fn all(layers: usize) -> impl Iterator<Item = Linear> {
        (0..layers)
            .flat_map(|i| [Linear::Qkv(i), Linear::AttentionOutput(i), Linear::Intermediate(i), Linear::Output(i)])
            .chain([Linear::Pooler, Linear::Classifier])
    }
}

/// A LayerNorm (weight and bias) of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Norm {
    Embeddings,
    Attention(usize),
    Output(usize),
}

impl Norm {
    /// HF name without `.weight`/`.bias`.
    pub fn prefix(self) -> String {
        match self {
            Norm::Embeddings => "embeddings.LayerNorm".into(),
            Norm::Attention(i) => format!("encoder.layer.{i}.attention.output.LayerNorm"),
            Norm::Output(i) => format!("encoder.layer.{i}.output.LayerNorm"),
        }
    }

    /// Every LayerNorm of a model with `layers` encoder layers.
    pub fn all(layers: usize) -> impl Iterator<Item = Norm> {
        std::iter::once(Norm::Embeddings).chain((0..layers).flat_map(|i| [Norm::Attention(i), Norm::Output(i)]))
    }
}

/// HF names (without `.weight`) of the word, position and token-type embedding tables.
pub const EMBEDDING_TABLES: [&str; 3] =
    ["embeddings.word_embeddings", "embeddings.position_embeddings", "embeddings.token_type_embeddings"];

/// The activation buffers the pass reads and writes; each backend maps them to its own storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Hidden,
    Qkv,
    Context,
    Attended,
    Intermediate,
    Pooled,
    Logits,
}

/// The rows an operation produces: one per token of every text, or one per text (its `[CLS]` token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    Tokens,
    Cls,
}

/// What follows a linear layer's product and bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    /// Nothing.
    None,
    /// The model's feed-forward activation (`hidden_act`).
    Activation,
    /// `tanh` (the pooler).
    Tanh,
    /// `LayerNorm(y + residual)`, the residual's rows matching the output's.
    ResidualNorm { residual: Slot, norm: Norm },
}

/// The operations of the pass. Each writes its output slot whole, for the rows asked for.
pub trait Ops {
    type Error;
    /// `LayerNorm(word[id] + position[p] + token_type[t])` for every token, into `out`.
    fn embed(&mut self, out: Slot) -> Result<(), Self::Error>;
    /// `epilogue(input . W^T + b)` for `rows` rows; `input` holds those rows, or every token when `rows`
    /// is `Cls` and it was written per token (the backend picks the `[CLS]` rows).
    fn linear(
        &mut self,
        linear: Linear,
        input: Slot,
        output: Slot,
        epilogue: Epilogue,
        rows: Rows,
    ) -> Result<(), Self::Error>;
    /// Multi-head self-attention over each text's tokens (padding masked), for the query rows `queries`.
    fn attention(&mut self, qkv: Slot, output: Slot, queries: Rows) -> Result<(), Self::Error>;
}

/// Runs the pass for a model of `layers` encoder layers; `last_layer` says whether the last layer runs for
/// every token or only the `[CLS]` rows from its attention queries on. The logits end in [`Slot::Logits`].
pub fn run<O: Ops>(ops: &mut O, layers: usize, last_layer: Rows) -> Result<(), O::Error> {
    ops.embed(Slot::Hidden)?;
    for layer in 0..layers {
        let rows = if layer + 1 == layers { last_layer } else { Rows::Tokens };
        ops.linear(Linear::Qkv(layer), Slot::Hidden, Slot::Qkv, Epilogue::None, Rows::Tokens)?;
        ops.attention(Slot::Qkv, Slot::Context, rows)?;
        let norm = Epilogue::ResidualNorm { residual: Slot::Hidden, norm: Norm::Attention(layer) };
        ops.linear(Linear::AttentionOutput(layer), Slot::Context, Slot::Attended, norm, rows)?;
        ops.linear(Linear::Intermediate(layer), Slot::Attended, Slot::Intermediate, Epilogue::Activation, rows)?;
        let norm = Epilogue::ResidualNorm { residual: Slot::Attended, norm: Norm::Output(layer) };
        ops.linear(Linear::Output(layer), Slot::Intermediate, Slot::Hidden, norm, rows)?;
    }
    ops.linear(Linear::Pooler, Slot::Hidden, Slot::Pooled, Epilogue::Tanh, Rows::Cls)?;
    ops.linear(Linear::Classifier, Slot::Pooled, Slot::Logits, Epilogue::None, Rows::Cls)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the operations, to check the pass's structure.
    #[derive(Default)]
    struct Trace(Vec<String>);

    impl Ops for Trace {
        type Error = ();
        fn embed(&mut self, out: Slot) -> Result<(), ()> {
            self.0.push(format!("embed {out:?}"));
            Ok(())
        }
        fn linear(
            &mut self,
            linear: Linear,
            input: Slot,
            output: Slot,
            epilogue: Epilogue,
            rows: Rows,
        ) -> Result<(), ()> {
            self.0.push(format!("{linear:?} {input:?}->{output:?} {epilogue:?} {rows:?}"));
            Ok(())
        }
        fn attention(&mut self, qkv: Slot, output: Slot, queries: Rows) -> Result<(), ()> {
            self.0.push(format!("attention {qkv:?}->{output:?} {queries:?}"));
            Ok(())
        }
    }

    #[test]
    fn the_pass_reads_every_slot_after_it_is_written_and_only_the_last_layer_narrows() {
        let mut trace = Trace::default();
        run(&mut trace, 3, Rows::Cls).unwrap();
        assert_eq!(trace.0.len(), 1 + 3 * 5 + 2);
        assert!(trace.0[1..12].iter().all(|op| op.ends_with("Tokens")), "{:?}", &trace.0[1..12]);
        assert!(trace.0[12..].iter().all(|op| op.ends_with("Cls")), "{:?}", &trace.0[12..]);
        assert_eq!(trace.0.last().unwrap(), "Classifier Pooled->Logits None Cls");
        let mut full = Trace::default();
        run(&mut full, 2, Rows::Tokens).unwrap();
        assert_eq!(full.0.iter().filter(|op| op.ends_with("Cls")).count(), 2, "only the head runs on [CLS] rows");
    }

    #[test]
    fn names_cover_every_tensor_of_a_layer_once() {
        let names: Vec<String> = Linear::all(2).flat_map(Linear::parts).chain(Norm::all(2).map(Norm::prefix)).collect();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names.len(), 2 * 6 + 2 + 1 + 2 * 2);
        assert!(names.contains(&"encoder.layer.1.attention.self.value".to_string()));
    }
}
