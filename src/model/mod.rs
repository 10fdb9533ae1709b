//! BERT for sequence classification: the one model definition of the project, with exactly the
//! semantics of Hugging Face's `BertForSequenceClassification`
//! (transformers/models/bert/modeling_bert.py): embeddings (word + position + token type, LayerNorm),
//! post-LayerNorm encoder layers (self-attention with an additive padding mask, GELU feed-forward),
//! pooler (dense + tanh on `[CLS]`), classifier. Dropout is applied only in [`Mode::Train`].
//!
//! The same code serves inference (fused candle kernels, weights from a [`crate::weights::WeightStore`])
//! and training (weights from a `VarMap`): `load` takes any `VarBuilder` and `forward` takes the mode.
//! Training on the CPU in f32 runs the [`fused`] kernels (LayerNorm, attention, bias + GELU, dropout,
//! each with its own backward pass); elsewhere it composes candle's differentiable primitives.
//! [`seed_dropout`] makes training's dropout masks reproducible.

mod dropout;
#[cfg(not(target_arch = "wasm32"))]
pub mod fused;

use dropout::dropout;
#[cfg(not(target_arch = "wasm32"))]
use dropout::next_mask;
pub use dropout::{seed_dropout, DropoutMask};

use candle_core::{DType, Module, Tensor, D};
use candle_nn::{Embedding, Init, Linear, VarBuilder};

use crate::config::{BertConfig, HiddenAct};

/// Inference runs the fused kernels with dropout off; training runs differentiable kernels with dropout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Infer,
    Train,
}

impl Mode {
    fn dropout(self, xs: &Tensor, p: f64) -> candle_core::Result<Tensor> {
        match self {
            Mode::Train if p > 0.0 => dropout(xs, p),
            _ => Ok(xs.clone()),
        }
    }

    /// Whether this pass runs the fused training kernels.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    fn fused(self, xs: &Tensor) -> bool {
        #[cfg(not(target_arch = "wasm32"))]
        return self == Mode::Train && fused::applies(xs);
        #[cfg(target_arch = "wasm32")]
        return {
            let _ = xs;
            false
        };
    }
}

/// A linear layer initialised as HF does (normal(0, initializer_range) weights, zero bias) when the
/// builder creates variables. The weights are f32 here whatever the storage: int8 checkpoints are
/// dequantized by the weight store, which is the reference semantics of the int8 format.
fn linear(in_dim: usize, out_dim: usize, config: &BertConfig, vb: VarBuilder) -> candle_core::Result<Linear> {
    let init = Init::Randn { mean: 0.0, stdev: config.initializer_range };
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
    let bias = vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?;
    Ok(Linear::new(weight, Some(bias)))
}

fn embedding(rows: usize, dim: usize, config: &BertConfig, vb: VarBuilder) -> candle_core::Result<Embedding> {
    let init = Init::Randn { mean: 0.0, stdev: config.initializer_range };
    Ok(Embedding::new(vb.get_with_hints((rows, dim), "weight", init)?, dim))
}

/// LayerNorm over the last dimension (biased variance, as PyTorch).
#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(dim: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }

    /// `LayerNorm(dropout(product + bias) + residual)`, the fused end of a dense block (training on the CPU).
    #[cfg(not(target_arch = "wasm32"))]
    fn dense_residual(
        &self,
        product: &Tensor,
        bias: Option<&Tensor>,
        residual: &Tensor,
        p: f64,
    ) -> candle_core::Result<Tensor> {
        let bias = bias.expect("BERT's linear layers have biases");
        let dropout = (p > 0.0).then(|| next_mask(p));
        fused::dense_residual_norm(product, bias, residual, &self.weight, &self.bias, self.eps, dropout)
    }

    fn forward(&self, xs: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        #[cfg(not(target_arch = "wasm32"))]
        if mode.fused(xs) {
            return fused::layer_norm(xs, &self.weight, &self.bias, self.eps);
        }
        match mode {
            // candle's fused kernel has no backward pass: training composes differentiable primitives.
            Mode::Infer => candle_nn::ops::layer_norm(&xs.contiguous()?, &self.weight, &self.bias, self.eps as f32),
            Mode::Train => candle_nn::ops::layer_norm_slow(xs, &self.weight, &self.bias, self.eps as f32),
        }
    }
}

/// HF `BertEmbeddings`, absolute positions only ([modeling_bert.py#L53][hf]).
///
/// [hf]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L53
struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    dropout: f64,
}

impl Embeddings {
    fn load(config: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = config.hidden_size;
        Ok(Self {
            word: embedding(config.vocab_size, h, config, vb.pp("word_embeddings"))?,
            position: embedding(config.max_position_embeddings, h, config, vb.pp("position_embeddings"))?,
            token_type: embedding(config.type_vocab_size, h, config, vb.pp("token_type_embeddings"))?,
            norm: LayerNorm::load(h, config.layer_norm_eps, vb.pp("LayerNorm"))?,
            dropout: config.hidden_dropout_prob,
        })
    }

    fn forward(&self, input_ids: &Tensor, type_ids: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        let seq_len = input_ids.dim(1)?;
        let positions = Tensor::arange(0u32, seq_len as u32, input_ids.device())?;
        let xs = self
            .word
            .forward(input_ids)?
            .add(&self.token_type.forward(type_ids)?)?
            .broadcast_add(&self.position.forward(&positions)?)?;
        mode.dropout(&self.norm.forward(&xs, mode)?, self.dropout)
    }
}

/// HF `BertAttention` ([#L296][attention]), which merges two HF modules into one here: `BertSelfAttention`
/// ([#L139][self]: Q, K and V projections, scaled dot-product attention with the additive padding mask,
/// probability dropout) and `BertSelfOutput` ([#L282][output]: output projection, dropout, residual,
/// LayerNorm). Encoder-only: no cross-attention, cache or relative positions.
///
/// [attention]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L296
/// [self]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L139
/// [output]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L282
struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    norm: LayerNorm,
    heads: usize,
    head_dim: usize,
    attention_dropout: f64,
    hidden_dropout: f64,
}

impl SelfAttention {
    fn load(config: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = config.hidden_size;
        let this = vb.pp("self");
        let out = vb.pp("output");
        Ok(Self {
            query: linear(h, h, config, this.pp("query"))?,
            key: linear(h, h, config, this.pp("key"))?,
            value: linear(h, h, config, this.pp("value"))?,
            output: linear(h, h, config, out.pp("dense"))?,
            norm: LayerNorm::load(h, config.layer_norm_eps, out.pp("LayerNorm"))?,
            heads: config.num_attention_heads,
            head_dim: config.head_dim(),
            attention_dropout: config.attention_probs_dropout_prob,
            hidden_dropout: config.hidden_dropout_prob,
        })
    }

    /// `[batch, seq, hidden]` to `[batch, heads, seq, head_dim]`.
    fn split_heads(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, _) = xs.dims3()?;
        xs.reshape((b, s, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()
    }

    fn forward(&self, xs: &Tensor, mask: &Mask, mode: Mode) -> candle_core::Result<Tensor> {
        #[cfg(not(target_arch = "wasm32"))]
        if mode.fused(xs) {
            // One matrix multiply for Q, K and V; bias, attention and dropout in one kernel; the output
            // projection's bias, dropout, residual and LayerNorm in another.
            let (b, s, h) = xs.dims3()?;
            let rows = xs.reshape((b * s, h))?;
            let linears = [&self.query, &self.key, &self.value];
            let weight = Tensor::cat(&linears.map(|l| l.weight()), 0)?;
            let bias = Tensor::cat(&linears.map(|l| l.bias().expect("BERT's linear layers have biases")), 0)?;
            let dropout = (self.attention_dropout > 0.0).then(|| next_mask(self.attention_dropout));
            let context = fused::attention(&rows.matmul(&weight.t()?)?, &bias, &mask.tokens, self.heads, dropout)?;
            let product = context.matmul(&self.output.weight().t()?)?;
            return self
                .norm
                .dense_residual(&product, self.output.bias(), &rows, self.hidden_dropout)?
                .reshape((b, s, h));
        }
        let mask = &mask.additive;
        let (b, s, h) = xs.dims3()?;
        let q = self.split_heads(&self.query.forward(xs)?)?;
        let k = self.split_heads(&self.key.forward(xs)?)?;
        let v = self.split_heads(&self.value.forward(xs)?)?;
        let scores = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?.broadcast_add(mask)?;
        let probs = match mode {
            Mode::Infer => candle_nn::ops::softmax_last_dim(&scores)?,
            // Composed (differentiable) and in f32 when training in half precision, as autocast does.
            Mode::Train => {
                candle_nn::ops::softmax(&scores.to_dtype(DType::F32)?, D::Minus1)?.to_dtype(scores.dtype())?
            }
        };
        let probs = mode.dropout(&probs, self.attention_dropout)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
        let projected = mode.dropout(&self.output.forward(&context)?, self.hidden_dropout)?;
        self.norm.forward(&(projected + xs)?, mode)
    }
}

impl SelfAttention {
    /// The attention block for the `[CLS]` row of each text only, as the last layer needs it: keys and
    /// values span every token, the query is the `[CLS]` row's. `xs` `[batch, seq, hidden]` -> `[batch, 1,
    /// hidden]`, equal to row 0 of [`Self::forward`]'s output (and its gradients are those of the full
    /// block, since nothing reads the other rows). Composed of candle primitives around two matrix
    /// multiplies: the attention itself is `[batch, heads, 1, seq]`, too small to need a kernel.
    fn forward_cls(&self, xs: &Tensor, mask: &Mask, mode: Mode) -> candle_core::Result<Tensor> {
        let (b, s, h) = xs.dims3()?;
        let (heads, d) = (self.heads, self.head_dim);
        let rows = xs.reshape((b * s, h))?;
        let cls = xs.narrow(1, 0, 1)?.reshape((b, h))?;
        // Keys and values of every token in one matrix multiply.
        let kv = rows_linear(&rows, &[&self.key, &self.value])?;
        let split = |part: usize| kv.narrow(1, part * h, h)?.reshape((b, s, heads, d))?.transpose(1, 2)?.contiguous();
        let (k, v) = (split(0)?, split(1)?);
        let q = rows_linear(&cls, &[&self.query])?.reshape((b, heads, 1, d))?;
        let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?.broadcast_add(&mask.additive)?;
        let probs = match mode {
            Mode::Infer => candle_nn::ops::softmax_last_dim(&scores)?,
            Mode::Train => {
                candle_nn::ops::softmax(&scores.to_dtype(DType::F32)?, D::Minus1)?.to_dtype(scores.dtype())?
            }
        };
        let probs = mode.dropout(&probs, self.attention_dropout)?;
        let context = probs.matmul(&v)?.reshape((b, h))?;
        let product = context.matmul(&self.output.weight().t()?)?;
        #[cfg(not(target_arch = "wasm32"))]
        if mode.fused(xs) {
            return self
                .norm
                .dense_residual(&product, self.output.bias(), &cls, self.hidden_dropout)?
                .reshape((b, 1, h));
        }
        let bias = self.output.bias().expect("BERT's linear layers have biases");
        let projected = mode.dropout(&product.broadcast_add(bias)?, self.hidden_dropout)?;
        self.norm.forward(&(projected + cls)?, mode)?.reshape((b, 1, h))
    }
}

/// `rows [n, in]` through the linear layers `linears` stacked by output: one matrix multiply, `[n, sum of
/// outs]`, biases added.
fn rows_linear(rows: &Tensor, linears: &[&Linear]) -> candle_core::Result<Tensor> {
    let (weight, bias) = match linears {
        [one] => (one.weight().clone(), one.bias().expect("BERT's linear layers have biases").clone()),
        _ => (
            Tensor::cat(&linears.iter().map(|l| l.weight()).collect::<Vec<_>>(), 0)?,
            Tensor::cat(
                &linears.iter().map(|l| l.bias().expect("BERT's linear layers have biases")).collect::<Vec<_>>(),
                0,
            )?,
        ),
    };
    rows.matmul(&weight.t()?)?.broadcast_add(&bias)
}

/// HF `BertIntermediate` ([#L325][intermediate]: dense + activation) and `BertOutput` ([#L340][output]:
/// dense, dropout, residual, LayerNorm) as one block.
///
/// [intermediate]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L325
/// [output]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L340
struct FeedForward {
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
    act: HiddenAct,
    dropout: f64,
}

impl FeedForward {
    fn load(config: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        Ok(Self {
            intermediate: linear(h, i, config, vb.pp("intermediate").pp("dense"))?,
            output: linear(i, h, config, vb.pp("output").pp("dense"))?,
            norm: LayerNorm::load(h, config.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            act: config.hidden_act,
            dropout: config.hidden_dropout_prob,
        })
    }

    fn forward(&self, xs: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        #[cfg(not(target_arch = "wasm32"))]
        if mode.fused(xs) && self.act == HiddenAct::Gelu {
            let (b, s, h) = xs.dims3()?;
            let rows = xs.reshape((b * s, h))?;
            let bias = self.intermediate.bias().expect("BERT's linear layers have biases");
            let hidden = fused::bias_gelu(&rows.matmul(&self.intermediate.weight().t()?)?, bias)?;
            let product = hidden.matmul(&self.output.weight().t()?)?;
            return self.norm.dense_residual(&product, self.output.bias(), &rows, self.dropout)?.reshape((b, s, h));
        }
        let hidden = self.intermediate.forward(xs)?;
        let hidden = match self.act {
            HiddenAct::Gelu => hidden.gelu_erf()?,
            HiddenAct::GeluNew => hidden.gelu()?,
            HiddenAct::Relu => hidden.relu()?,
        };
        let out = mode.dropout(&self.output.forward(&hidden)?, self.dropout)?;
        self.norm.forward(&(out + xs)?, mode)
    }
}

/// HF `BertLayer` ([#L354][layer]): attention, then the feed-forward block. The layers run in order as in
/// `BertEncoder` ([#L419][encoder]), in [`BertClassifier::encode`].
///
/// [layer]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L354
/// [encoder]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L419
struct EncoderLayer {
    attention: SelfAttention,
    feed_forward: FeedForward,
}

/// BERT with a sequence-classification head: HF `BertForSequenceClassification` ([#L1072][head]: dropout,
/// then the classifier on the pooled output), merged with the `BertModel` it wraps ([#L594][model]:
/// embeddings, encoder) and `BertPooler` ([#L451][pooler]: dense + tanh on the `[CLS]` row). The links
/// pin transformers 5.17.0, the version the test goldens come from.
///
/// [head]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L1072
/// [model]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L594
/// [pooler]: https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/bert/modeling_bert.py#L451
pub struct BertClassifier {
    embeddings: Embeddings,
    layers: Vec<EncoderLayer>,
    pooler: Linear,
    classifier: Linear,
    classifier_dropout: f64,
    num_labels: usize,
}

impl BertClassifier {
    /// Builds the model from a `VarBuilder` whose names are HF's without the `bert.` prefix
    /// (`embeddings.*`, `encoder.layer.N.*`, `pooler.dense.*`, `classifier.*`).
    pub fn load(vb: VarBuilder, config: &BertConfig, num_labels: usize) -> candle_core::Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let vb = vb.pp(format!("encoder.layer.{i}"));
                Ok(EncoderLayer {
                    attention: SelfAttention::load(config, vb.pp("attention"))?,
                    feed_forward: FeedForward::load(config, vb.clone())?,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        let h = config.hidden_size;
        Ok(Self {
            embeddings: Embeddings::load(config, vb.pp("embeddings"))?,
            layers,
            pooler: linear(h, h, config, vb.pp("pooler").pp("dense"))?,
            classifier: linear(h, num_labels, config, vb.pp("classifier"))?,
            classifier_dropout: config.classifier_dropout.unwrap_or(config.hidden_dropout_prob),
            num_labels,
        })
    }

    /// Number of classes the head predicts.
    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    /// Logits `[batch, num_labels]` for `input_ids`, `type_ids` and `attention_mask` (`[batch, seq]`, u32;
    /// mask 1 = token, 0 = padding).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        type_ids: &Tensor,
        attention_mask: &Tensor,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        // Only the [CLS] rows reach the pooler: the last layer computes its queries and everything after
        // them for those rows alone (keys and values still span every token), a sixth of a 6-layer pass.
        let Some((last, earlier)) = self.layers.split_last() else {
            candle_core::bail!("the model has no encoder layers")
        };
        let (xs, mask) = self.encode_layers(input_ids, type_ids, attention_mask, earlier, mode)?;
        let xs = last.attention.forward_cls(&xs, &mask, mode)?;
        let cls = last.feed_forward.forward(&xs, mode)?.squeeze(1)?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        let pooled = mode.dropout(&pooled, self.classifier_dropout)?;
        self.classifier.forward(&pooled)
    }

    /// The encoder's last hidden states `[batch, seq, hidden]` (HF `BertModel`'s `last_hidden_state`) for
    /// the same inputs as [`Self::forward`].
    pub fn encode(
        &self,
        input_ids: &Tensor,
        type_ids: &Tensor,
        attention_mask: &Tensor,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        Ok(self.encode_layers(input_ids, type_ids, attention_mask, &self.layers, mode)?.0)
    }

    /// The embeddings, then `layers`: hidden states `[batch, seq, hidden]` and the padding mask.
    fn encode_layers(
        &self,
        input_ids: &Tensor,
        type_ids: &Tensor,
        attention_mask: &Tensor,
        layers: &[EncoderLayer],
        mode: Mode,
    ) -> candle_core::Result<(Tensor, Mask)> {
        let mut xs = self.embeddings.forward(input_ids, type_ids, mode)?;
        let mask = Mask { additive: additive_mask(attention_mask, xs.dtype())?, tokens: attention_mask.clone() };
        for layer in layers {
            xs = layer.attention.forward(&xs, &mask, mode)?;
            xs = layer.feed_forward.forward(&xs, mode)?;
        }
        Ok((xs, mask))
    }
}

/// The padding mask in the two forms attention takes it.
struct Mask {
    /// `[batch, 1, 1, seq]`, added to the scores (the composed path).
    additive: Tensor,
    /// `[batch, seq]`, u32, 1 = token (the fused kernel).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    tokens: Tensor,
}

/// `[batch, 1, 1, seq]`: 0 where a token is attended, the dtype's most negative finite value where it is
/// padding (HF uses `finfo(dtype).min`). Built with `where_cond`, never by multiplying, so no
/// `0 * -inf = NaN` in half precision.
fn additive_mask(attention_mask: &Tensor, dtype: DType) -> candle_core::Result<Tensor> {
    let (b, s) = attention_mask.dims2()?;
    let min = match dtype {
        DType::F16 => half::f16::MIN.to_f64(),
        DType::BF16 => half::bf16::MIN.to_f64(),
        _ => f32::MIN as f64,
    };
    let zeros = Tensor::zeros((b, s), dtype, attention_mask.device())?;
    let masked = Tensor::full(min, (b, s), attention_mask.device())?.to_dtype(dtype)?;
    attention_mask.ne(0u32)?.where_cond(&zeros, &masked)?.reshape((b, 1, 1, s))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    use super::{BertClassifier, Mode};
    use crate::config::BertConfig;

    /// Logits through the whole last layer, as HF computes them: every row of every layer, then the
    /// `[CLS]` row of the last hidden states into the head (dropout off).
    fn full_pass_logits(model: &BertClassifier, inputs: &[Tensor; 3], mode: Mode) -> Tensor {
        let xs = model.encode(&inputs[0], &inputs[1], &inputs[2], mode).unwrap();
        let cls = xs.narrow(1, 0, 1).unwrap().squeeze(1).unwrap().contiguous().unwrap();
        let pooled = candle_core::Module::forward(&model.pooler, &cls).unwrap().tanh().unwrap();
        candle_core::Module::forward(&model.classifier, &pooled).unwrap()
    }

    fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// The last layer computed for the `[CLS]` rows alone gives the logits of the whole layer, and, in
    /// training (fused kernels, dropout off so both passes draw nothing), the same gradient for every
    /// parameter: nothing downstream reads the other rows. A padded batch checks the masked keys.
    #[test]
    fn the_cls_only_last_layer_gives_the_full_pass_logits_and_gradients() {
        let mut config = BertConfig::from_json(include_bytes!("../../tests/fixtures/tiny/config.json")).unwrap();
        config.hidden_dropout_prob = 0.0;
        config.attention_probs_dropout_prob = 0.0;
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let model = BertClassifier::load(VarBuilder::from_varmap(&varmap, DType::F32, &device), &config, 2).unwrap();
        let (b, s) = (3, 7);
        let ids: Vec<u32> = (0..b * s).map(|i| (i as u32 * 37 + 5) % 1000).collect();
        let mask: Vec<u32> = (0..b * s).map(|i| u32::from(i % s < [7, 4, 1][i / s])).collect();
        let inputs = [
            Tensor::from_vec(ids, (b, s), &device).unwrap(),
            Tensor::zeros((b, s), DType::U32, &device).unwrap(),
            Tensor::from_vec(mask, (b, s), &device).unwrap(),
        ];
        for mode in [Mode::Infer, Mode::Train] {
            let ours = model.forward(&inputs[0], &inputs[1], &inputs[2], mode).unwrap();
            let full = full_pass_logits(&model, &inputs, mode);
            assert!(max_difference(&ours, &full) < 1e-5, "{mode:?}: {ours} vs {full}");
            if mode == Mode::Train {
                let (ours, full) =
                    (ours.sum_all().unwrap().backward().unwrap(), full.sum_all().unwrap().backward().unwrap());
                for (name, var) in varmap.data().lock().unwrap().iter() {
                    let (a, b) = (ours.get(var), full.get(var));
                    match (a, b) {
                        (Some(a), Some(b)) => {
                            let scale =
                                b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
                            assert!(max_difference(a, b) <= 1e-4 * scale.max(1e-3), "{name}");
                        }
                        (a, b) => {
                            panic!("{name}: gradient in the CLS pass {}, in the full pass {}", a.is_some(), b.is_some())
                        }
                    }
                }
            }
        }
    }
}
