//! Our BERT encoder (`tweetguard::model`) against candle-transformers' `BertModel`, an independent Rust
//! implementation of Hugging Face's BERT that the product does not use (ours adds the pooler and head,
//! dropout, fused training kernels and a LayerNorm with a gradient; see the README). Same weights, same
//! token ids, padding included: every real token's last hidden state agrees within `tolerance::FLOAT`.
//! Shared by the native test (`tests/candle_reference.rs`) and the browser cases (`tests/browser/cases.rs`),
//! so the check also runs on the wasm build.

use candle_core::{Device, Tensor};
use candle_transformers::models::bert as candle_bert;
use tweetguard::model::{BertClassifier, Mode};
use tweetguard::tokenize::{BertTokenizer, EncodedBatch};
use tweetguard::tolerance::FLOAT;
use tweetguard::weights::WeightStore;
use tweetguard::{BertConfig, HeadInit};

/// Tweets of different lengths in one batch, so the shorter rows are padded and the mask matters.
const TEXTS: [&str; 4] = [
    "Just finished my morning run, legs are jelly but worth it",
    "ok",
    "Can't believe the game last night!!! What a finish #football @someone https://t.co/x",
    "The quick brown fox jumps over the lazy dog, and then the dog wakes up and chases the fox around.",
];

fn tensor(values: &[u32], batch: &EncodedBatch) -> Tensor {
    Tensor::from_slice(values, (batch.batch_size, batch.seq_len), &Device::Cpu).unwrap()
}

/// Compares the two encoders on `weights` (an HF checkpoint, `bert.`-prefixed or bare names); returns a
/// line saying how close they came.
pub fn compare(name: &str, config_json: &[u8], tokenizer_json: &[u8], weights: Vec<u8>) -> String {
    let config = BertConfig::from_json(config_json).unwrap();
    let tokenizer = BertTokenizer::from_json(tokenizer_json, 64).unwrap();
    let batch = tokenizer.encode_batch(&TEXTS).unwrap();
    let (ids, types, mask) =
        (tensor(&batch.input_ids, &batch), tensor(&batch.type_ids, &batch), tensor(&batch.attention_mask, &batch));

    let ours = BertClassifier::load(
        WeightStore::from_bytes(weights.clone(), HeadInit::Require).unwrap().into_var_builder(&Device::Cpu),
        &config,
        config.labels().unwrap().len(),
    )
    .unwrap();
    let ours = ours.encode(&ids, &types, &mask, Mode::Infer).unwrap();

    let reference_config: candle_bert::Config = serde_json::from_slice(config_json).unwrap();
    let vb = candle_nn::VarBuilder::from_buffered_safetensors(weights, candle_core::DType::F32, &Device::Cpu).unwrap();
    let reference = candle_bert::BertModel::load(vb, &reference_config).unwrap();
    let reference = reference.forward(&ids, &types, Some(&mask)).unwrap();

    assert_eq!(ours.dims(), reference.dims(), "{name}: hidden-state shapes differ");
    let (ours, reference) = (ours.to_vec3::<f32>().unwrap(), reference.to_vec3::<f32>().unwrap());
    let hidden = config.hidden_size;
    let (mut worst, mut compared) = ((0f32, 0, 0), 0usize);
    for (row, (ours, reference)) in ours.iter().zip(&reference).enumerate() {
        for (token, (a, b)) in ours.iter().zip(reference).enumerate() {
            if batch.attention_mask[row * batch.seq_len + token] == 0 {
                continue; // padding: neither model's output there is read
            }
            assert_eq!(a.len(), hidden);
            for (&got, &want) in a.iter().zip(b) {
                assert!(
                    FLOAT.allows(got, want),
                    "{name}: text {row}, token {token}: ours {got}, candle-transformers {want} (tolerance {FLOAT:?})"
                );
                compared += 1;
                let diff = (got - want).abs();
                if diff > worst.0 {
                    worst = (diff, row, token);
                }
            }
        }
    }
    let real_tokens: u32 = batch.attention_mask.iter().sum();
    assert_eq!(compared, real_tokens as usize * hidden, "{name}: every real token's hidden state was compared");
    assert!(batch.attention_mask.contains(&0), "{name}: the batch must hold padding, so the mask is exercised");
    format!(
        "{name}: {compared} hidden-state values within {} of candle-transformers' BertModel (worst at text {}, token {})",
        worst.0, worst.1, worst.2
    )
}
