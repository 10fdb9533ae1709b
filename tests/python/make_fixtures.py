"""Makes the committed test fixtures and their goldens with Hugging Face transformers (a developer runs
this once; CI never installs torch).

Pinned: torch==2.11.0 transformers==5.17.0 tokenizers==0.23.3 numpy==2.4.6 safetensors==0.8.0
Usage: python3 make_fixtures.py TWEEPFAKE_DIR MINILM_DIR OUT_DIR

Writes to OUT_DIR:
  tiny/{config.json,tokenizer.json,model.safetensors,model.int8.safetensors}
      a 2-layer, 32-wide BERT with its own 1,000-token WordPiece vocabulary, briefly trained on TweepFake
      so its head gives decisive logits; model.int8.safetensors comes from the numpy reference quantizer.
  tiny_goldens.json
      hand-written tricky texts: token ids, f32 logits and int8-reference logits (HF model run with the
      dequantized int8 weights), all from a padded batch as the product runs it.
  tiny_validation_goldens.json, minilm_validation_goldens.json
      the same for validation rows by index (texts are read from ../shared at test time, never committed).
  minilm_head.safetensors, minilm_goldens.json
      a fixed random classifier head for all-MiniLM-L6-v2 and the logits it gives.
"""
import csv
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from tokenizers import BertWordPieceTokenizer, Tokenizer
from tokenizers.processors import TemplateProcessing
from transformers import BertConfig, BertForSequenceClassification

sys.path.insert(0, os.path.dirname(__file__))
from int8_reference import dequantize, metadata_for, quantize_state  # noqa: E402

DATA, MINILM, OUT = sys.argv[1:4]
MAX_LEN = 128
LABELS = {0: "human", 1: "bot"}
torch.manual_seed(0)
np.random.seed(0)

TRICKY = [
    "", "   ", "\t\n ", "Just setting up my twttr",
    "I love this 😂😂😂 #blessed", "family day 👨‍👩‍👧‍👦 with 👍🏽 and 🇺🇸🇬🇧",
    "Check this out https://t.co/r12OIXkfUO via @someone_else",
    "@elonmusk #AI is #overhyped lol", "RT @user: \"quoted\" text &amp; more…",
    "مرحبا بالعالم hello world", "שלום עולם, shalom", "今日は良い天気ですね 我爱你 한국어",
    "cafe\u0301 nai\u0308ve Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇", "tab\there\u0000nul\u0007bell\u200bzero-width\u00adsoft",
    "Ça va très bien, merci. Überall Straße", "BREAKING NEWS!!! 1234567890 3.14159",
    "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "The decade in the significantly easier schedule I Don't like h…",
    "word " * 300, "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "\ufeffbyte order mark and \U0001F600 astral", "a",
]


def read_rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        r = csv.reader(f, delimiter=";")
        next(r)
        return [(row[1], 1 if row[2] == "bot" else 0) for row in r]


def encode(tok, texts):
    encs = tok.encode_batch(texts)
    n = max(len(e.ids) for e in encs)
    ids = np.zeros((len(encs), n), np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encs):
        ids[i, :len(e.ids)] = e.ids
        mask[i, :len(e.ids)] = 1
    return [e.ids for e in encs], torch.tensor(ids), torch.tensor(mask)


@torch.no_grad()
def logits(model, tok, texts, bs=32):
    model.eval()
    out = []
    for i in range(0, len(texts), bs):
        _, ids, mask = encode(tok, texts[i:i + bs])
        out += model(input_ids=ids, attention_mask=mask).logits.float().tolist()
    return out


def int8_model(model):
    """A copy of `model` whose quantized weights are replaced by their int8 reference dequantization."""
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    q = quantize_state(state)
    deq = {}
    for name, t in state.items():
        deq[name] = dequantize(q[name + ".q"], q[name + ".scale"], t.shape[1]) if name + ".q" in q else t
    clone = BertForSequenceClassification(model.config)
    clone.load_state_dict({k: torch.tensor(v) for k, v in deq.items()})
    return clone.eval()


def goldens(model, tok, texts, key, keyname):
    model_q = int8_model(model)
    ids, _, _ = encode(tok, texts)
    f32 = logits(model, tok, texts)
    q8 = logits(model_q, tok, texts)
    return [{keyname: k, "ids": i, "logits_f32": a, "logits_int8ref": b} for k, i, a, b in zip(key, ids, f32, q8)]


def dump(obj, name):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=None, separators=(",", ":"))


train = read_rows(os.path.join(DATA, "train.csv"))
val = read_rows(os.path.join(DATA, "validation.csv"))
val_texts = [t for t, _ in val[:64]]

# ---- tiny BERT -------------------------------------------------------------------------------------
tiny_dir = os.path.join(OUT, "tiny")
os.makedirs(tiny_dir, exist_ok=True)
wp = BertWordPieceTokenizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
wp.train_from_iterator([t for t, _ in train], vocab_size=1000, min_frequency=3,
                       special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
wp.post_processor = TemplateProcessing(
    single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
    special_tokens=[("[CLS]", wp.token_to_id("[CLS]")), ("[SEP]", wp.token_to_id("[SEP]"))])
wp.save(os.path.join(tiny_dir, "tokenizer.json"))
tok = Tokenizer.from_file(os.path.join(tiny_dir, "tokenizer.json"))
tok.no_padding()
tok.enable_truncation(MAX_LEN)

config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=48, max_position_embeddings=MAX_LEN, id2label=LABELS,
                    label2id={v: k for k, v in LABELS.items()}, pad_token_id=0)
model = BertForSequenceClassification(config)
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
rng = np.random.default_rng(0)
model.train()
for step in range(500):
    batch = [train[j] for j in rng.integers(0, len(train), 32)]
    _, ids, mask = encode(tok, [t for t, _ in batch])
    loss = torch.nn.functional.cross_entropy(model(input_ids=ids, attention_mask=mask).logits,
                                             torch.tensor([y for _, y in batch]))
    opt.zero_grad()
    loss.backward()
    opt.step()
# Sharpen the head so most logits are decisive (labels then comparable across implementations).
with torch.no_grad():
    model.classifier.weight.mul_(4.0)
    model.classifier.bias.mul_(4.0)
model.eval()
acc = np.mean([int(np.argmax(l)) == y for l, (_, y) in zip(logits(model, tok, [t for t, _ in val]), val)])
print(f"tiny model validation accuracy {acc:.3f} (loss {loss.item():.3f})")
model.save_pretrained(tiny_dir)
state = load_file(os.path.join(tiny_dir, "model.safetensors"))
quantized = quantize_state(state)
save_file(quantized, os.path.join(tiny_dir, "model.int8.safetensors"), metadata=metadata_for(quantized))
dump(goldens(model, tok, TRICKY, TRICKY, "text"), "tiny_goldens.json")
dump(goldens(model, tok, val_texts, list(range(64)), "row"), "tiny_validation_goldens.json")

# ---- all-MiniLM-L6-v2 with a fixed random head -------------------------------------------------------
mtok = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
mtok.no_padding()
mtok.enable_truncation(MAX_LEN)
mconfig = BertConfig.from_pretrained(MINILM, num_labels=2, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
mmodel = BertForSequenceClassification.from_pretrained(MINILM, config=mconfig).float().eval()
head = {"classifier.weight": (rng.standard_normal((2, 384)) * 0.2).astype(np.float32),
        "classifier.bias": np.array([0.05, -0.05], np.float32)}
save_file(head, os.path.join(OUT, "minilm_head.safetensors"))
with torch.no_grad():
    mmodel.classifier.weight.copy_(torch.tensor(head["classifier.weight"]))
    mmodel.classifier.bias.copy_(torch.tensor(head["classifier.bias"]))
dump(goldens(mmodel, mtok, TRICKY, TRICKY, "text"), "minilm_goldens.json")
dump(goldens(mmodel, mtok, val_texts, list(range(64)), "row"), "minilm_validation_goldens.json")
print("fixtures written to", OUT)
