//! Texts to model inputs with the Hugging Face `tokenizers` crate: truncation to the model's maximum
//! length (flagged per text), padding done here to the longest text of each batch, and checks that the
//! tokenizer fits the model's embedding table.

pub use tokenizers::Encoding;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};

/// The default maximum sequence length (tokens, including `[CLS]` and `[SEP]`).
pub const DEFAULT_MAX_LENGTH: usize = 128;

/// Bytes of text read per token of the maximum length: a longer text is cut to its first
/// `max_length * PREFIX_BYTES_PER_TOKEN` bytes (at a space where there is one) before tokenizing, so a
/// multi-megabyte cell costs what a short one does. English runs at 4-5 bytes per token and a tweet is at
/// most 280 characters, so only a text whose first 8 KiB (at 128 tokens) hold fewer tokens than fit reads
/// differently from its whole; either way it is flagged truncated.
pub const PREFIX_BYTES_PER_TOKEN: usize = 64;

/// Token ids, type ids and attention mask of a batch, padded to its longest row, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBatch {
    pub input_ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub attention_mask: Vec<u32>,
    /// Rows in the batch.
    pub batch_size: usize,
    /// Columns (the longest row's length).
    pub seq_len: usize,
    /// Per row: whether the text was cut to fit the maximum length.
    pub truncated: Vec<bool>,
}

impl EncodedBatch {
    /// Token ids of one row without padding.
    pub fn row_ids(&self, row: usize) -> Vec<u32> {
        let start = row * self.seq_len;
        let ids = &self.input_ids[start..start + self.seq_len];
        let mask = &self.attention_mask[start..start + self.seq_len];
        ids.iter().zip(mask).filter(|(_, m)| **m == 1).map(|(i, _)| *i).collect()
    }
}

/// Row indices grouped into batches of at most `batch_size` rows of similar length, so padding stays small;
/// callers scatter results back by index.
pub fn batches_by_length(encodings: &[Encoding], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..encodings.len()).collect();
    order.sort_by_key(|&i| encodings[i].get_ids().len());
    order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
}

/// A `tokenizer.json` prepared for classification: its own padding disabled, truncation set to the
/// model's maximum length.
#[derive(Clone)]
pub struct BertTokenizer {
    tokenizer: Tokenizer,
    max_length: usize,
    pad_id: u32,
}

/// The first at most `limit` bytes of `text`, ending before a whitespace character where the last quarter
/// of them has one (so no word is cut in two), else at a character boundary.
fn bounded_prefix(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    match head.rfind(char::is_whitespace) {
        Some(space) if space >= end - end / 4 => &head[..space],
        _ => head,
    }
}

/// tokenizers 0.22 indexes a template's special tokens by name when it encodes (`special_tokens[id]`,
/// "we already checked existence above": its builder does, its Deserialize does not), so a template
/// post-processor naming a token its `special_tokens` lack panics on the first text. Refused at load
/// instead. Judged by shape, not by `type`: its untagged post-processor enum takes any object with
/// `single`, `pair` and `special_tokens` as a template, whatever its `type` says, inside `Sequence`
/// post-processors too. Found by fuzzing.
fn check_templates(processor: &serde_json::Value) -> Result<()> {
    let known = processor.get("special_tokens").and_then(serde_json::Value::as_object);
    let pieces = ["single", "pair"].into_iter().filter_map(|t| processor.get(t)?.as_array()).flatten();
    for piece in pieces {
        let Some(name) = piece.get("SpecialToken").and_then(|t| t.get("id")?.as_str()) else { continue };
        if !known.is_some_and(|k| k.contains_key(name)) {
            return Err(Error::Tokenizer(format!(
                "tokenizer.json: the post_processor's template uses the special token {name:?}, which its \
                 special_tokens do not define"
            )));
        }
    }
    processor
        .get("processors")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .try_for_each(check_templates)
}

impl BertTokenizer {
    /// Parses `tokenizer.json` bytes. `max_length` counts special tokens.
    pub fn from_json(bytes: &[u8], max_length: usize) -> Result<Self> {
        if max_length < 2 {
            return Err(Error::Tokenizer(format!("max_length {max_length} leaves no room for [CLS] and [SEP]")));
        }
        // The whole document first, every string decoded: tokenizers 0.22 panics (`expect("Helper")` in
        // its decoder's Deserialize) on any JSON error inside `decoder`, which in wasm is a trap. Found by
        // fuzzing: a syntax error, then invalid UTF-8 inside a string, which a pass with `IgnoredAny`
        // skips unchecked. A `Value` checks both (a few ms for a 30k-token vocabulary).
        let document = serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
        check_templates(&document["post_processor"])?;
        // From the document already parsed: the JSON text is read once.
        let mut tokenizer: Tokenizer = serde_json::from_value(document).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let pad_id = tokenizer.get_padding().map(|p| p.pad_id).or_else(|| tokenizer.token_to_id("[PAD]")).unwrap_or(0);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let encoder = Self { tokenizer, max_length, pad_id };
        if encoder.encode(&[""])?[0].get_ids().is_empty() {
            return Err(Error::Tokenizer(
                "tokenizer.json adds no special tokens (no post_processor): a BERT classifier reads its \
                 verdict from the [CLS] token, so the tokenizer must add [CLS] and [SEP]"
                    .into(),
            ));
        }
        Ok(encoder)
    }

    /// Number of ids the tokenizer can produce (vocabulary plus added tokens).
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The largest id any token maps to, for checking against an embedding table.
    pub fn max_token_id(&self) -> u32 {
        let vocab = self.tokenizer.get_vocab(true);
        vocab.values().copied().max().unwrap_or(0)
    }

    /// Maximum tokens per text, including special tokens.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Encodes texts and pads them to the longest one.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<EncodedBatch> {
        let encodings = self.encode(texts)?;
        Ok(self.pad(&encodings.iter().collect::<Vec<_>>()))
    }

    /// Encodes texts one by one, truncated but not padded. A text is cut to a bounded prefix first
    /// ([`PREFIX_BYTES_PER_TOKEN`]); a cut text carries an empty overflowing part, so it reads as truncated
    /// like any other.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        texts
            .iter()
            .map(|text| {
                let prefix = bounded_prefix(text, self.max_length * PREFIX_BYTES_PER_TOKEN);
                let mut encoding = self.tokenizer.encode(prefix, true)?;
                if prefix.len() < text.len() && encoding.get_overflowing().is_empty() {
                    encoding.set_overflowing(vec![Encoding::default()]);
                }
                Ok(encoding)
            })
            .collect::<tokenizers::Result<Vec<_>>>()
            .map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))
    }

    /// Pads encodings to the longest of them.
    pub fn pad(&self, encodings: &[&Encoding]) -> EncodedBatch {
        let seq_len = encodings.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let rows = encodings.len();
        let mut batch = EncodedBatch {
            input_ids: vec![self.pad_id; rows * seq_len],
            type_ids: vec![0; rows * seq_len],
            attention_mask: vec![0; rows * seq_len],
            batch_size: rows,
            seq_len,
            truncated: Vec::with_capacity(rows),
        };
        for (row, enc) in encodings.iter().enumerate() {
            let start = row * seq_len;
            let n = enc.get_ids().len();
            batch.input_ids[start..start + n].copy_from_slice(enc.get_ids());
            batch.type_ids[start..start + n].copy_from_slice(enc.get_type_ids());
            batch.attention_mask[start..start + n].fill(1);
            batch.truncated.push(!enc.get_overflowing().is_empty());
        }
        batch
    }
}
