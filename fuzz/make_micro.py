"""Writes fuzz/micro/: a 1-layer, 32-wide BERT with a 40-token vocabulary (config.json, tokenizer.json,
model.safetensors in f32, model.int8.safetensors), small enough that the `weights` fuzz target loads
thousands of mutated copies a second and its corpus stays a few KB per input. Random weights (seeded):
the target checks loading, not accuracy. Run from the repository root: python3 fuzz/make_micro.py"""
import json
import pathlib
import sys

import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, "tests/python")
import int8_reference  # noqa: E402

VOCAB, HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS = 40, 32, 1, 4, 32, 20
out = pathlib.Path("fuzz/micro")
out.mkdir(parents=True, exist_ok=True)

config = json.loads(pathlib.Path("tests/fixtures/tiny/config.json").read_text())
config.update(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
              intermediate_size=INTERMEDIATE, max_position_embeddings=POSITIONS)
(out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

tokenizer = json.loads(pathlib.Path("tests/fixtures/tiny/tokenizer.json").read_text())
tokenizer["model"]["vocab"] = {t: i for t, i in tokenizer["model"]["vocab"].items() if i < VOCAB}
(out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False) + "\n")

rng = np.random.default_rng(0)
def normal(*shape):
    return (rng.standard_normal(shape) * 0.2).astype(np.float32)
tensors = {
    "bert.embeddings.word_embeddings.weight": normal(VOCAB, HIDDEN),
    "bert.embeddings.position_embeddings.weight": normal(POSITIONS, HIDDEN),
    "bert.embeddings.token_type_embeddings.weight": normal(2, HIDDEN),
    "bert.embeddings.LayerNorm.weight": np.ones(HIDDEN, np.float32),
    "bert.embeddings.LayerNorm.bias": np.zeros(HIDDEN, np.float32),
    "bert.pooler.dense.weight": normal(HIDDEN, HIDDEN), "bert.pooler.dense.bias": normal(HIDDEN),
    "classifier.weight": normal(2, HIDDEN), "classifier.bias": normal(2),
}
for layer in range(LAYERS):
    p = f"bert.encoder.layer.{layer}."
    for name, (rows, cols) in {"attention.self.query": (HIDDEN, HIDDEN), "attention.self.key": (HIDDEN, HIDDEN),
                               "attention.self.value": (HIDDEN, HIDDEN), "attention.output.dense": (HIDDEN, HIDDEN),
                               "intermediate.dense": (INTERMEDIATE, HIDDEN), "output.dense": (HIDDEN, INTERMEDIATE)}.items():
        tensors[p + name + ".weight"], tensors[p + name + ".bias"] = normal(rows, cols), normal(rows)
    for norm in ["attention.output.LayerNorm", "output.LayerNorm"]:
        tensors[p + norm + ".weight"], tensors[p + norm + ".bias"] = np.ones(HIDDEN, np.float32), np.zeros(HIDDEN, np.float32)
save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
save_file(int8_reference.quantize_state(tensors), out / "model.int8.safetensors", metadata=int8_reference.FORMAT)
for f in sorted(out.iterdir()):
    print(f, f.stat().st_size)
