"""Token ids from the Python `tokenizers` wheel, for the Rust parity test (tests/tokenizer_parity.rs).

Usage: python3 token_ids.py TOKENIZER_JSON MAX_LENGTH < texts.json > ids.json
Reads a JSON list of strings, writes a JSON list of id lists (truncated to MAX_LENGTH, no padding).
"""
import json
import sys

from tokenizers import Tokenizer

tok = Tokenizer.from_file(sys.argv[1])
tok.no_padding()
tok.enable_truncation(int(sys.argv[2]))
texts = json.load(sys.stdin)
json.dump([e.ids for e in tok.encode_batch(texts)], sys.stdout)
