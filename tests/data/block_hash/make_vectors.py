#!/usr/bin/python3
"""Writes vectors.txt: block hashes computed the way vLLM computes them.

The serialisations and digests come from the same Python libraries vLLM calls (pickle, cbor2,
hashlib, xxhash); the chain and the extra keys follow vLLM's kv_cache_utils.py
(init_none_hash, generate_block_hash_extra_keys, hash_block_tokens, get_request_block_hasher).
Debian 12: apt-get install python3-cbor2 python3-xxhash, then run it with /usr/bin/python3 from
anywhere; the output is
deterministic, so a re-run reproduces the committed file byte for byte.

Format, one record per line, fields separated by single spaces. A string is "x" and the hex of its
UTF-8 ("x" alone is ""); "-" is None.
  case <algo> <seed> <block_size> <lora> <salt> <mm count> {<identifier> <offset> <length>}
  tokens <id> ...                        (the whole prompt; may end in a partial block)
  none <digest hex>                      (NONE_HASH for this algorithm and seed)
  block <index> <serialisation hex> <digest hex> <u64>
"""

import hashlib
import os
import pickle
import random
import sys

import cbor2
import xxhash


def serialise(algo, value):
    if algo in ("sha256", "xxhash"):
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return cbor2.dumps(value, canonical=True)


def digest(algo, data):
    if algo.startswith("sha256"):
        return hashlib.sha256(data).digest()
    return xxhash.xxh3_128_digest(data)


def hash_fn(algo, value):
    return digest(algo, serialise(algo, value))


def block_extra_keys(start, end, lora_name, cache_salt, mm_inputs, mm_index):
    """Extra keys of block [start, end) in vLLM's order: LoRA name, multimodal inputs
    (identifier, offset from the block's start), cache salt (first block only)."""
    mm_keys = []
    if mm_inputs and mm_inputs[-1][1] + mm_inputs[-1][2] > start:
        while mm_index < len(mm_inputs):
            identifier, offset, length = mm_inputs[mm_index]
            if end <= offset:
                break  # not reached yet
            if start >= offset + length:
                mm_index += 1  # already passed
                continue
            mm_keys.append((identifier, offset - start))
            if end >= offset + length:
                mm_index += 1  # ends here; the next input may start in this block too
            else:
                break
    keys = ([lora_name] if lora_name is not None else []) + mm_keys
    if start == 0 and cache_salt:
        keys.append(cache_salt)
    return (tuple(keys) if keys else None), mm_index


def prompt_blocks(algo, seed, block_size, tokens, lora_name, cache_salt, mm_inputs):
    none_hash = hash_fn(algo, seed)
    parent = None
    mm_index = 0
    out = []
    for start in range(0, len(tokens) - block_size + 1, block_size):
        end = start + block_size
        extra, mm_index = block_extra_keys(start, end, lora_name, cache_salt, mm_inputs, mm_index)
        value = (parent if parent else none_hash, tuple(tokens[start:end]), extra)
        data = serialise(algo, value)
        parent = digest(algo, data)
        out.append((data, parent))
    return none_hash, out


def fresh(text):
    # A string object of its own, as a request field decoded from a request would be, rather than
    # a constant the compiler shares. CPython still shares "" and one-character Latin-1 strings.
    return text.encode("utf-8").decode("utf-8") if text is not None else None


def random_token(rng):
    edges = [0, 1, 255, 256, 65535, 65536, 2**31 - 1]
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(edges)
    if roll < 0.4:
        return rng.randrange(256)
    if roll < 0.7:
        return rng.randrange(65536)
    return rng.randrange(2**31)


def random_text(rng, long_ok):
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_/.é漢😀"
    length = rng.choice([1, 3, 8, 20] + ([300] if long_ok else []))
    return fresh("".join(rng.choice(alphabet) for _ in range(length)))


def random_mm(rng, prompt_len):
    inputs = []
    at = rng.randrange(0, max(1, prompt_len // 3))
    while at < prompt_len and len(inputs) < 3:
        length = rng.randrange(1, max(2, prompt_len // 2))
        identifier = fresh(f"{rng.getrandbits(256):064x}"[: rng.choice([8, 64])])
        inputs.append((identifier, at, length))
        at += length + rng.randrange(0, 6)
    return inputs


def hex_text(text):
    return "x" + text.encode("utf-8").hex() if text is not None else "-"


def emit_case(lines, algo, seed, block_size, tokens, lora, salt, mm):
    none_hash, hashed = prompt_blocks(algo, seed, block_size, tokens, lora, salt, mm)
    fields = [algo, seed, str(block_size), hex_text(lora), hex_text(salt), str(len(mm))]
    for identifier, offset, length in mm:
        fields += [hex_text(identifier), str(offset), str(length)]
    lines.append("case " + " ".join(fields))
    lines.append("tokens " + " ".join(str(t) for t in tokens))
    lines.append(f"none {none_hash.hex()}")
    for index, (data, d) in enumerate(hashed):
        u64 = int.from_bytes(d, "big") & (2**64 - 1)
        lines.append(f"block {index} {data.hex()} {d.hex()} {u64}")


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "vectors.txt")
    rng = random.Random(20261202)
    lines = []
    algos = ["sha256", "sha256_cbor", "xxhash", "xxhash_cbor"]
    seeds = ["0", "42", "4294967295"]
    block_sizes = [1, 7, 16, 64]
    for algo in algos:
        for seed in seeds:
            for block_size in block_sizes:
                for variant in range(6):
                    blocks = rng.choice([1, 2, 3, 5]) if block_size < 64 else rng.choice([1, 2])
                    n = blocks * block_size + rng.choice([0, 0, 1, block_size - 1])
                    tokens = [random_token(rng) for _ in range(n)]
                    lora = random_text(rng, variant == 4) if variant in (1, 4, 5) else None
                    salt = random_text(rng, variant == 4) if variant in (2, 4, 5) else None
                    mm = random_mm(rng, n) if variant in (3, 5) else []
                    emit_case(lines, algo, seed, block_size, tokens, lora, salt, mm)
        # CPython shares one object for "" and each single Latin-1 character, and pickle writes a
        # second occurrence of an object as a reference to the first.
        for lora, salt, mm in [("a", "a", []), ("\u00e9", "\u00e9", []), ("\u6f22", "\u6f22", []),
                               ("", None, []), ("x", "x", [("x", 0, 3)]), (None, "", [])]:
            tokens = [rng.randrange(2**31) for _ in range(9)]
            mm = [(fresh(i), o, l) for i, o, l in mm]
            emit_case(lines, algo, "0", 4, tokens, fresh(lora), fresh(salt), mm)
    with open(out_path, "w") as f:
        f.write("# Block-hash vectors made by make_vectors.py; see its docstring for the format.\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
