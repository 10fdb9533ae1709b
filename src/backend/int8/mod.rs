//! The int8 CPU engine: [`crate::pass`] on the CPU with the weights kept int8 and the activations quantized
//! to 7 bits per block (of the weights' length, 32 or 64 values) as each linear layer reads them, so every
//! one is an integer matrix multiply ([`gemm`]; wasm `simd128` or relaxed SIMD in the browser, AVX2 /
//! AVX-VNNI / AVX-512 VNNI natively, chosen at load). Embeddings, LayerNorm, GELU and attention run in f32
//! ([`ops`]).
//!
//! The texts of a batch are laid end to end without padding: every linear layer runs once over all
//! tokens, and attention runs per text at its own length with no mask. The last layer computes only the
//! `[CLS]` rows after its keys and values. Buffers live in an arena that grows to the largest pass seen and
//! is reused by later calls. The tolerance of these semantics against the reference (int8 weights, f32
//! activations) is in docs/weight-format.md.

mod choice;
pub mod gemm;
mod ops;
#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::Mutex;

use candle_nn::Init;

pub use gemm::Isa;
use gemm::{GemmScratch, PackedMatrix, QuantizedRows};
use ops::AttentionScratch;

use super::KernelProfile;

use crate::config::{BertConfig, HiddenAct};
use crate::error::{Error, Result};
use crate::pass::{self, Epilogue, Linear, Norm, Rows, Slot, EMBEDDING_TABLES};
use crate::tokenize::EncodedBatch;
use crate::weights::quant::{block_len_for, padded_len, QuantizedMatrix};
use crate::weights::{StoredMatrix, WeightStore};

/// Most tokens in one pass through the model; larger batches are split (bounds the arena's size).
const MAX_PASS_TOKENS: usize = 2048;

/// An int8 embedding table, rows padded to whole blocks.
struct Table {
    values: Vec<i8>,
    scales: Vec<f32>,
    stride: usize,
    rows: usize,
    /// Values per block.
    block: usize,
}

impl Table {
    fn new(m: QuantizedMatrix) -> Self {
        Table { stride: padded_len(m.cols), rows: m.rows, values: m.values, scales: m.scales, block: m.block }
    }
}

/// The int8 matrices of one encoder layer, in [`Linear`] order.
struct Layer {
    qkv: PackedMatrix,
    attention_output: PackedMatrix,
    intermediate: PackedMatrix,
    output: PackedMatrix,
}

/// The model as the engine holds it.
struct Weights {
    tables: [Table; 3],
    layers: Vec<Layer>,
    pooler: PackedMatrix,
    /// The head stays f32, as the file stores it: `[labels, hidden]` and `[labels]`.
    classifier: (Vec<f32>, Vec<f32>),
    /// `(gamma, beta)` in [`Norm::all`] order.
    norms: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Weights {
    fn linear(&self, linear: Linear) -> &PackedMatrix {
        match linear {
            Linear::Qkv(i) => &self.layers[i].qkv,
            Linear::AttentionOutput(i) => &self.layers[i].attention_output,
            Linear::Intermediate(i) => &self.layers[i].intermediate,
            Linear::Output(i) => &self.layers[i].output,
            Linear::Pooler => &self.pooler,
            Linear::Classifier => unreachable!("the classifier is f32"),
        }
    }

    fn norm(&self, norm: Norm) -> (&[f32], &[f32]) {
        let index = match norm {
            Norm::Embeddings => 0,
            Norm::Attention(i) => 1 + 2 * i,
            Norm::Output(i) => 2 + 2 * i,
        };
        let (gamma, beta) = &self.norms[index];
        (gamma, beta)
    }
}

/// The matrix `name` (`.weight`) as int8 blocks: the file's, or f32 quantized as the exporter would.
fn as_int8(stored: StoredMatrix, name: &str, rows: usize, cols: usize) -> Result<QuantizedMatrix> {
    match stored {
        StoredMatrix::Int8(m) => Ok(m),
        StoredMatrix::F32(values) => {
            QuantizedMatrix::quantize_in_blocks(&values, rows, cols, block_len_for(name, cols))
        }
    }
}

/// One pass's activation buffer: f32 rows, and which rows they are.
#[derive(Default)]
struct Buffer {
    values: Vec<f32>,
    rows: Option<Rows>,
}

/// The engine's reusable buffers: one per [`Slot`], plus scratch.
#[derive(Default)]
struct Arena {
    slots: [Buffer; 7],
    /// A linear layer's input rows, quantized in its weights' blocks.
    input: QuantizedRows,
    gemm: GemmScratch,
    attention: AttentionScratch,
}

fn slot_index(slot: Slot) -> usize {
    match slot {
        Slot::Hidden => 0,
        Slot::Qkv => 1,
        Slot::Context => 2,
        Slot::Attended => 3,
        Slot::Intermediate => 4,
        Slot::Pooled => 5,
        Slot::Logits => 6,
    }
}

/// A batch without padding: each text's tokens end to end.
struct Ragged {
    ids: Vec<u32>,
    types: Vec<u32>,
    /// Per text: first token and length.
    texts: Vec<(usize, usize)>,
}

impl Ragged {
    /// The tokens of `rows` rows of a padded batch (padding is at the end of each row).
    fn from_padded(batch: &EncodedBatch, rows: std::ops::Range<usize>) -> Self {
        let mut this = Ragged { ids: Vec::new(), types: Vec::new(), texts: Vec::with_capacity(rows.len()) };
        for row in rows {
            let cells = row * batch.seq_len..(row + 1) * batch.seq_len;
            let len = batch.attention_mask[cells.clone()].iter().take_while(|&&m| m != 0).count();
            this.texts.push((this.ids.len(), len));
            this.ids.extend_from_slice(&batch.input_ids[cells.start..cells.start + len]);
            this.types.extend_from_slice(&batch.type_ids[cells.start..cells.start + len]);
        }
        this
    }

    fn tokens(&self) -> usize {
        self.ids.len()
    }

    /// Row `r` of `rows` rows in a slot laid out as `layout`: the token row, or the text's `[CLS]` row.
    fn source_row(&self, layout: Rows, wanted: Rows, r: usize) -> usize {
        match (layout, wanted) {
            (Rows::Tokens, Rows::Cls) => self.texts[r].0,
            _ => r,
        }
    }

    fn rows(&self, rows: Rows) -> usize {
        match rows {
            Rows::Tokens => self.tokens(),
            Rows::Cls => self.texts.len(),
        }
    }
}

/// A model loaded into the int8 engine.
pub struct Int8Engine {
    isa: Isa,
    /// Why `isa` runs, where a race at load chose it ([`choice`]).
    isa_reason: Option<String>,
    weights: Weights,
    hidden: usize,
    heads: usize,
    labels: usize,
    eps: f32,
    act: HiddenAct,
    arena: Mutex<Arena>,
}

impl Int8Engine {
    /// Packs the model described by `config` from `store` for the fastest instruction set here.
    pub fn load(store: &WeightStore, config: &BertConfig, labels: usize) -> Result<Self> {
        let choice = choice::fastest();
        let mut engine = Self::load_with(store, config, labels, choice.isa)?;
        engine.isa_reason = choice.reason;
        Ok(engine)
    }

    /// As [`Self::load`], on a given instruction set (tests compare them).
    pub fn load_with(store: &WeightStore, config: &BertConfig, labels: usize, isa: Isa) -> Result<Self> {
        if !Isa::available().contains(&isa) {
            return Err(Error::cpu(format!("the {} kernels do not run here", isa.name())));
        }
        let h = config.hidden_size;
        let weight_init = Init::Randn { mean: 0.0, stdev: config.initializer_range };
        let zeros = Init::Const(0.0);
        let table_rows = [config.vocab_size, config.max_position_embeddings, config.type_vocab_size];
        let tables = [0, 1, 2].map(|i| -> Result<Table> {
            let name = format!("{}.weight", EMBEDDING_TABLES[i]);
            let stored = store.matrix(&name, &[table_rows[i], h], weight_init)?;
            Ok(Table::new(as_int8(stored, &name, table_rows[i], h)?))
        });
        let [word, position, token_type] = tables;
        let pack = |linear: Linear| -> Result<PackedMatrix> {
            let (rows, cols) = linear.shape(config, labels);
            let parts = linear.parts();
            let part_rows = rows / parts.len();
            let mut stored = Vec::with_capacity(parts.len());
            let mut bias = Vec::with_capacity(rows);
            for name in &parts {
                stored.push(store.matrix(&format!("{name}.weight"), &[part_rows, cols], weight_init)?);
                bias.extend(store.tensor_f32(&format!("{name}.bias"), &[part_rows], zeros)?);
            }
            let name = format!("{}.weight", parts[0]);
            Ok(PackedMatrix::pack(&as_int8(StoredMatrix::stack(stored, cols)?, &name, rows, cols)?, &bias))
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                Ok(Layer {
                    qkv: pack(Linear::Qkv(i))?,
                    attention_output: pack(Linear::AttentionOutput(i))?,
                    intermediate: pack(Linear::Intermediate(i))?,
                    output: pack(Linear::Output(i))?,
                })
            })
            .collect::<Result<_>>()?;
        let norms = Norm::all(config.num_hidden_layers)
            .map(|norm| {
                let prefix = norm.prefix();
                Ok((
                    store.tensor_f32(&format!("{prefix}.weight"), &[h], Init::Const(1.0))?,
                    store.tensor_f32(&format!("{prefix}.bias"), &[h], zeros)?,
                ))
            })
            .collect::<Result<_>>()?;
        let classifier_name = &Linear::Classifier.parts()[0];
        let classifier = (
            store.tensor_f32(&format!("{classifier_name}.weight"), &[labels, h], weight_init)?,
            store.tensor_f32(&format!("{classifier_name}.bias"), &[labels], zeros)?,
        );
        let weights = Weights {
            tables: [word?, position?, token_type?],
            layers,
            pooler: pack(Linear::Pooler)?,
            classifier,
            norms,
        };
        Ok(Self {
            isa,
            isa_reason: None,
            weights,
            hidden: h,
            heads: config.num_attention_heads,
            labels,
            eps: config.layer_norm_eps as f32,
            act: config.hidden_act,
            arena: Mutex::default(),
        })
    }

    /// The instruction set the matrix multiplies run on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Why [`Self::isa`] runs, where a race between kernels at load chose it (with their times).
    pub fn isa_reason(&self) -> Option<&str> {
        self.isa_reason.as_deref()
    }

    /// Bytes of weights the engine holds.
    pub fn weight_bytes(&self) -> usize {
        let w = &self.weights;
        let tables: usize = w.tables.iter().map(|t| t.values.len() + 4 * t.scales.len()).sum();
        let linears: usize = w
            .layers
            .iter()
            .map(|l| {
                l.qkv.weight_bytes()
                    + l.attention_output.weight_bytes()
                    + l.intermediate.weight_bytes()
                    + l.output.weight_bytes()
            })
            .sum();
        tables + linears + w.pooler.weight_bytes() + 4 * (w.classifier.0.len() + w.classifier.1.len())
    }

    /// Logits, one row per text of `batch`.
    pub fn logits(&self, batch: &EncodedBatch) -> Result<Vec<Vec<f32>>> {
        self.run(batch, None)
    }

    /// Logits with the time of each operation of the pass, in order (`bench --profile`): each linear
    /// layer's matrix multiply and its epilogue apart. Timing costs little: one clock read per operation.
    pub fn profile(&self, batch: &EncodedBatch) -> Result<KernelProfile> {
        let mut kernels = Vec::new();
        let logits = self.run(batch, Some(&mut kernels))?;
        Ok(KernelProfile { kernels, logits })
    }

    fn run(&self, batch: &EncodedBatch, mut times: Option<&mut Vec<(&'static str, f64)>>) -> Result<Vec<Vec<f32>>> {
        let mut arena = self.arena.lock().map_err(|_| Error::cpu("the engine's arena lock was poisoned"))?;
        let mut logits = Vec::with_capacity(batch.batch_size);
        let mut start = 0;
        while start < batch.batch_size {
            // As many texts as fit the pass's token budget (at least one).
            let mut end = start + 1;
            let mut tokens = batch.seq_len;
            while end < batch.batch_size && tokens + batch.seq_len <= MAX_PASS_TOKENS {
                tokens += batch.seq_len;
                end += 1;
            }
            let texts = Ragged::from_padded(batch, start..end);
            self.check_ids(&texts)?;
            let mut run =
                Run { engine: self, arena: &mut arena, texts: &texts, times: times.as_deref_mut(), clock: None };
            pass::run(&mut run, self.weights.layers.len(), Rows::Cls)?;
            let out = &arena.slots[slot_index(Slot::Logits)].values;
            logits.extend(out.chunks_exact(self.labels).take(end - start).map(<[f32]>::to_vec));
            start = end;
        }
        if logits.iter().flatten().any(|l| !l.is_finite()) {
            return Err(Error::cpu("the model produced non-finite logits: its weights are corrupt or out of range"));
        }
        Ok(logits)
    }

    fn check_ids(&self, texts: &Ragged) -> Result<()> {
        let [word, position, token_type] = &self.weights.tables;
        if let Some(id) = texts.ids.iter().find(|&&id| id as usize >= word.rows) {
            return Err(Error::Input(format!("token id {id} is outside the vocabulary of {} entries", word.rows)));
        }
        if let Some(t) = texts.types.iter().find(|&&t| t as usize >= token_type.rows) {
            return Err(Error::Input(format!("token type {t} is outside the model's {} types", token_type.rows)));
        }
        if let Some((_, len)) = texts.texts.iter().find(|(_, len)| *len > position.rows || *len == 0) {
            return Err(Error::Input(format!(
                "a text of {len} tokens does not fit the model's {} positions",
                position.rows
            )));
        }
        Ok(())
    }
}

/// One pass of the engine over a batch: [`pass::Ops`] on the arena.
struct Run<'a> {
    engine: &'a Int8Engine,
    arena: &'a mut Arena,
    texts: &'a Ragged,
    /// Where each operation's time goes when profiling.
    times: Option<&'a mut Vec<(&'static str, f64)>>,
    clock: Option<web_time::Instant>,
}

impl Run<'_> {
    /// Starts timing an operation (when profiling).
    fn start(&mut self) {
        if self.times.is_some() {
            self.clock = Some(web_time::Instant::now());
        }
    }

    /// Ends timing the operation started last, as `label`, and starts the next.
    fn lap(&mut self, label: &'static str) {
        if let (Some(times), Some(clock)) = (self.times.as_deref_mut(), self.clock) {
            times.push((label, clock.elapsed().as_secs_f64() * 1e3));
            self.clock = Some(web_time::Instant::now());
        }
    }

    /// Takes `slot`'s buffer out of the arena for writing, sized for `rows` rows of `width` values
    /// (zeros); [`Self::put`] returns it. The pass never writes a slot it reads in the same operation.
    fn take(&mut self, slot: Slot, rows: Rows, width: usize) -> Buffer {
        let n = self.texts.rows(rows);
        let mut buffer = std::mem::take(&mut self.arena.slots[slot_index(slot)]);
        buffer.values.clear();
        buffer.values.resize(n * width, 0.0);
        buffer.rows = Some(rows);
        buffer
    }

    fn put(&mut self, slot: Slot, buffer: Buffer) {
        self.arena.slots[slot_index(slot)] = buffer;
    }

    fn slot(&self, slot: Slot) -> &Buffer {
        &self.arena.slots[slot_index(slot)]
    }

    fn layout(&self, slot: Slot) -> Rows {
        self.arena.slots[slot_index(slot)].rows.expect("the pass writes every slot before reading it")
    }
}

impl pass::Ops for Run<'_> {
    type Error = Error;

    fn embed(&mut self, out: Slot) -> Result<()> {
        self.start();
        let engine = self.engine;
        let (h, eps) = (engine.hidden, engine.eps);
        let [word, position, token_type] = &engine.weights.tables;
        let (gamma, beta) = engine.weights.norm(Norm::Embeddings);
        let texts = self.texts;
        let mut buffer = self.take(out, Rows::Tokens, h);
        for &(start, len) in &texts.texts {
            for p in 0..len {
                let t = start + p;
                let row = &mut buffer.values[t * h..(t + 1) * h];
                for (table, index) in
                    [(word, texts.ids[t] as usize), (position, p), (token_type, texts.types[t] as usize)]
                {
                    ops::add_table_row(&table.values, &table.scales, table.stride, table.block, index, row);
                }
                ops::layer_norm(row, gamma, beta, eps);
            }
        }
        self.put(out, buffer);
        self.lap("embeddings + layernorm");
        Ok(())
    }

    fn linear(&mut self, linear: Linear, input: Slot, output: Slot, epilogue: Epilogue, rows: Rows) -> Result<()> {
        self.start();
        let engine = self.engine;
        let texts = self.texts;
        let n_rows = texts.rows(rows);
        let in_layout = self.layout(input);
        if linear == Linear::Classifier {
            let (w, bias) = &engine.weights.classifier;
            let h = engine.hidden;
            let mut buffer = self.take(output, rows, engine.labels);
            let x = &self.slot(input).values;
            for r in 0..n_rows {
                let row = &x[texts.source_row(in_layout, rows, r) * h..][..h];
                for (l, y) in buffer.values[r * engine.labels..][..engine.labels].iter_mut().enumerate() {
                    *y = bias[l] + row.iter().zip(&w[l * h..(l + 1) * h]).map(|(a, b)| a * b).sum::<f32>();
                }
            }
            self.put(output, buffer);
            self.lap(linear.role());
            return Ok(());
        }
        let w = engine.weights.linear(linear);
        // The input rows (only the [CLS] ones of a per-token slot where those are wanted), quantized in
        // the weights' blocks.
        let mut x = std::mem::take(&mut self.arena.input);
        x.reset_in_blocks(n_rows, w.k, w.block);
        let source = &self.slot(input).values;
        for r in 0..n_rows {
            x.set_row(r, &source[texts.source_row(in_layout, rows, r) * w.k..][..w.k]);
        }
        self.lap("quantize");
        let mut out = self.take(output, rows, w.n);
        let mut scratch = std::mem::take(&mut self.arena.gemm);
        gemm::matmul(engine.isa, &x, w, &mut out.values, w.n, &mut scratch);
        self.arena.input = x;
        self.arena.gemm = scratch;
        self.lap(linear.role());
        let epilogue_label = match epilogue {
            Epilogue::None => None,
            Epilogue::Activation => Some("activation"),
            Epilogue::Tanh => Some("tanh"),
            Epilogue::ResidualNorm { .. } => Some("residual + layernorm"),
        };
        for r in 0..n_rows {
            let row = &mut out.values[r * w.n..(r + 1) * w.n];
            match epilogue {
                Epilogue::None => {}
                Epilogue::Activation => ops::activate(engine.act, row),
                Epilogue::Tanh => ops::tanh(row),
                Epilogue::ResidualNorm { residual, norm } => {
                    let res = self.slot(residual);
                    let from = texts.source_row(res.rows.expect("written"), rows, r);
                    row.iter_mut().zip(&res.values[from * w.n..(from + 1) * w.n]).for_each(|(y, r)| *y += r);
                    let (gamma, beta) = engine.weights.norm(norm);
                    ops::layer_norm(row, gamma, beta, engine.eps);
                }
            }
        }
        if let Some(label) = epilogue_label {
            self.lap(label);
        }
        self.put(output, out);
        Ok(())
    }

    fn attention(&mut self, qkv: Slot, output: Slot, queries: Rows) -> Result<()> {
        self.start();
        let engine = self.engine;
        let (h, heads) = (engine.hidden, engine.heads);
        let texts = self.texts;
        let mut scratch = std::mem::take(&mut self.arena.attention);
        let mut buffer = self.take(output, queries, h);
        let source = &self.slot(qkv).values;
        for (b, &(start, len)) in texts.texts.iter().enumerate() {
            let rows = &source[start * 3 * h..(start + len) * 3 * h];
            let (range, first_out) = match queries {
                Rows::Tokens => (0..len, start),
                Rows::Cls => (0..1, b),
            };
            let out = &mut buffer.values[first_out * h..(first_out + range.len()) * h];
            ops::attention(rows, h, heads, range, &mut scratch, out);
        }
        self.arena.attention = scratch;
        self.put(output, buffer);
        self.lap("attention");
        Ok(())
    }
}
