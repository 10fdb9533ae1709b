"""Reference quantizer of the int8-block32-v1 weight format (docs/weight-format.md), in numpy.

The Rust quantizer (src/weights/quant.rs) must produce the same bytes; tests compare the two.
Usage: python3 int8_reference.py IN.safetensors OUT.int8.safetensors
Needs numpy and safetensors only (no torch).
"""
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

BLOCK = 32
FORMAT = {"format": "pt", "tweetguard_format": "int8-block32-v1"}


def is_quantized(name: str) -> bool:
    n = name[len("bert."):] if name.startswith("bert.") else name
    return (n.endswith(".weight") and "LayerNorm" not in n
            and n.startswith(("embeddings.", "encoder.", "pooler.")))


def quantize(w: np.ndarray):
    """[out, in] float32 -> (q int8 [out, in_padded], scale float32 [out, in_padded / 32])."""
    w = w.astype(np.float32)
    rows, cols = w.shape
    padded = -(-cols // BLOCK) * BLOCK
    wp = np.zeros((rows, padded), np.float32)
    wp[:, :cols] = w
    blocks = wp.reshape(rows, padded // BLOCK, BLOCK)
    scale = (np.abs(blocks).max(axis=-1) / np.float32(127)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))[..., None]
    q = np.where(scale[..., None] > 0, np.rint(blocks / safe), 0)
    q = np.clip(q, -127, 127).astype(np.int8).reshape(rows, padded)
    return q, scale


def dequantize(q: np.ndarray, scale: np.ndarray, cols: int) -> np.ndarray:
    rows, padded = q.shape
    w = q.astype(np.float32).reshape(rows, padded // BLOCK, BLOCK) * scale[..., None]
    return w.reshape(rows, padded)[:, :cols].astype(np.float32)


def quantize_state(tensors: dict) -> dict:
    out = {}
    for name, t in tensors.items():
        if t.dtype.kind != "f":
            continue  # buffers such as position_ids
        t = t.astype(np.float32)
        if is_quantized(name) and t.ndim == 2:
            out[name + ".q"], out[name + ".scale"] = quantize(t)
        else:
            out[name] = np.ascontiguousarray(t)
    return out


def main():
    src, dst = sys.argv[1:3]
    save_file(quantize_state(load_file(src)), dst, metadata=FORMAT)


if __name__ == "__main__":
    main()
