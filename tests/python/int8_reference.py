"""Reference quantizer of the int8-block-v2 weight format (docs/weight-format.md), in numpy.

The Rust quantizer (src/weights/quant.rs) must produce the same bytes; tests compare the two.
Usage: python3 int8_reference.py IN.safetensors OUT.int8.safetensors
Needs numpy and safetensors only (no torch).
"""
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

BLOCK = 32
WIDE_BLOCK = 64
FORMAT_V1 = {"format": "pt", "tweetguard_format": "int8-block32-v1"}  # every block 32 values
FORMAT_V2 = {"format": "pt", "tweetguard_format": "int8-block-v2"}  # some blocks 64


def is_quantized(name: str) -> bool:
    n = name[len("bert."):] if name.startswith("bert.") else name
    return (n.endswith(".weight") and "LayerNorm" not in n
            and n.startswith(("embeddings.", "encoder.", "pooler.")))


def block_len_for(name: str, cols: int) -> int:
    """64 for the attention output and FFN down-projection weights when `cols` is a multiple of 64;
    32 otherwise."""
    n = name[len("bert."):] if name.startswith("bert.") else name
    wide = n.startswith("encoder.layer.") and n.endswith(".output.dense.weight")
    return WIDE_BLOCK if wide and cols % WIDE_BLOCK == 0 else BLOCK


def quantize(w: np.ndarray, block: int = BLOCK):
    """[out, in] float32 -> (q int8 [out, in_padded], scale float32 [out, in_padded / block])."""
    w = w.astype(np.float32)
    rows, cols = w.shape
    padded = -(-cols // BLOCK) * BLOCK
    wp = np.zeros((rows, padded), np.float32)
    wp[:, :cols] = w
    blocks = wp.reshape(rows, padded // block, block)
    scale = (np.abs(blocks).max(axis=-1) / np.float32(127)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))[..., None]
    q = np.where(scale[..., None] > 0, np.rint(blocks / safe), 0)
    q = np.clip(q, -127, 127).astype(np.int8).reshape(rows, padded)
    return q, scale


def dequantize(q: np.ndarray, scale: np.ndarray, cols: int) -> np.ndarray:
    rows, padded = q.shape
    block = padded // scale.shape[1]
    w = q.astype(np.float32).reshape(rows, padded // block, block) * scale[..., None]
    return w.reshape(rows, padded)[:, :cols].astype(np.float32)


def quantize_state(tensors: dict) -> dict:
    out = {}
    for name, t in tensors.items():
        if t.dtype.kind != "f":
            continue  # buffers such as position_ids
        t = t.astype(np.float32)
        if is_quantized(name) and t.ndim == 2:
            out[name + ".q"], out[name + ".scale"] = quantize(t, block_len_for(name, t.shape[1]))
        else:
            out[name] = np.ascontiguousarray(t)
    return out


def metadata_for(quantized: dict) -> dict:
    """The file's metadata: v1 when every block is 32 values."""
    wide = any(v.shape[1] * WIDE_BLOCK == quantized[k[:-len(".scale")] + ".q"].shape[1]
               for k, v in quantized.items() if k.endswith(".scale"))
    return FORMAT_V2 if wide else FORMAT_V1


def main():
    src, dst = sys.argv[1:3]
    quantized = quantize_state(load_file(src))
    save_file(quantized, dst, metadata=metadata_for(quantized))


if __name__ == "__main__":
    main()
