"""Synthetic real-shape DiffusionGemma GGUF files for benchmarks (issue 7), no download needed.

``diffgemma-synth --layers 6 --outtype q8_0 --outfile synth.gguf`` writes a ``diffusion-gemma``
GGUF with the exact per-layer shapes of google/diffusiongemma-26B-A4B-it (hidden 2816, 16 heads,
8/2 KV heads, head dims 256/512, 128 experts top-8 of width 704, dense MLP 2112, vocabulary
262144, canvas 256, sliding window 1024, the 5:1 sliding/full pattern) and a chosen number of
layers, filled with random weights of a realistic scale, plus a full-size Gemma-4-style
tokenizer (every key of the community layout, gguf-layout.md §1.1), so diffgemma's tools and
llama.cpp PR #24423's ``llama-diffusion-cli`` both accept it.

Metadata and tensor order come from the converter (`diffgemma.convert`), so a synthetic file has
the same keys, names, types and order as a converted checkpoint. Tensor data is generated and
written one bounded chunk at a time: the whole file is never in memory (a 1-layer BF16 file is
about 2.4 GB, 1.5 GB of it the [262144, 2816] embedding).

Scale: weight matrices are N(0, 0.02) (the checkpoint's initializer_range), the embedding
N(0, 0.02) too (times sqrt(2816) at the input, so unit-scale activations), norm weights and scales
1 + N(0, 0.05) (q/k norms times head_dim^-1/4, so attention scores are of unit scale), layer
scalars 1. Every RMSNorm renormalises, so activations stay finite through
any number of layers. The output is a pure function of the arguments (same seed, same bytes).

The quantized mixes (``--outtype Q8_0 / Q6_K / Q5_K_M / Q4_K_M / Q5_0 / NVFP4``) take each tensor's
type from diffgemma-quantize's own rules (llama.cpp's mix rules; read off a probe file with the same
names, metadata and row lengths), and quantize the generated values chunk by chunk with its block
quantizers, so no full-precision copy is ever written: the full-size Q4_K_M file (about 16 GB) is
made directly. Our K-quant, Q5_0 and NVFP4 quantizers search their scales (a few million values a
second per core), so a large tensor in those formats is filled with rows drawn at random from a
pool of 256 rows that were quantized from N(0, 0.02) values: the blocks are real quantized blocks
of the right statistics, only the rows repeat (which no kernel can exploit: every row is still
read and decoded). NVFP4 tensors get a second-level scale from their values' spread (amax of N(0, 0.02)
over a few million draws), written as the `.scale` tensors the loader reads (folded into
ffn_down_exps.scale for the expert down projections, as the converters do).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, quants

from .convert.hf_config import HParams
from .convert.gguf_output import write_gguf_file
from .convert.hf_vocab import load_vocab
from .convert.layout import OUTTYPES, TensorPlan, expected_tensors, output_type, rope_freqs
from .convert.metadata import build_metadata
from .quantizer import TYPES as MIXES
from .tiny import write_gemma4_tokenizer_files

__all__ = ["real_hparams", "synth_tensors", "write_synth", "main", "MIXES"]

CHUNK_ELEMENTS = 1 << 22  # 16 MiB of float32 per generated chunk
WEIGHT_STD = 0.02
NORM_JITTER = 0.05


def real_hparams(n_layer: int, pattern: str = "real", small: bool = False, wide: bool = False) -> HParams:
    """google/diffusiongemma-26B-A4B-it's text config with `n_layer` layers.

    pattern: "real" (layer i is full attention when i % 6 == 5, as in the checkpoint),
    "sliding" (all sliding), "full" (all full attention), or one letter per layer, S (sliding) or
    F (full), e.g. "SF" (llama.cpp PR #24423 loads only files with both kinds of layer).
    """
    if n_layer < 1:
        raise ValueError("n_layer must be >= 1")
    if pattern == "real":
        is_swa = tuple(i % 6 != 5 for i in range(n_layer))
    elif pattern in ("sliding", "full"):
        is_swa = (pattern == "sliding",) * n_layer
    elif len(pattern) == n_layer and set(pattern) <= {"S", "F"}:
        is_swa = tuple(c == "S" for c in pattern)
    else:
        raise ValueError(f"unknown layer pattern {pattern!r}: real, sliding, full, or one S/F per layer")
    hp = HParams(
        architecture="DiffusionGemmaForBlockDiffusion",
        vocab_size=262_144,
        n_embd=2816,
        n_ff=2112,
        n_ff_exp=704,
        n_expert=128,
        n_expert_used=8,
        n_head=16,
        is_swa=is_swa,
        n_head_kv=tuple(8 if s else 2 for s in is_swa),
        head_dim_swa=256,
        head_dim_full=512,
        context_length=262_144,
        rms_norm_eps=1e-6,
        sliding_window=1024,
        final_logit_softcapping=30.0,
        rope_theta_full=1_000_000.0,
        rope_theta_swa=10_000.0,
        partial_rotary_full=0.25,
        partial_rotary_swa=1.0,
        shared_kv_layers=0,
        embedding_length_per_layer_input=0,
        canvas_length=256,
    )
    if small:
        hp = dataclasses.replace(hp, vocab_size=512, n_embd=64, n_ff=96, n_ff_exp=32, n_expert=8, n_expert_used=2,
                                 n_head=4, n_head_kv=tuple(2 if s else 1 for s in is_swa), head_dim_swa=16,
                                 head_dim_full=32, sliding_window=16, canvas_length=16)
    if wide:  # small, but rows of 256 values: K-quant blocks fit where they fit in the real model
        hp = dataclasses.replace(hp, vocab_size=1024, n_embd=256, n_ff=192, n_ff_exp=64, n_expert=8, n_expert_used=2,
                                 n_head=4, n_head_kv=tuple(2 if s else 1 for s in is_swa), head_dim_swa=64,
                                 head_dim_full=128, sliding_window=16, canvas_length=32)
    return hp


def synth_tensors(hp: HParams, outtype: str) -> list[TensorPlan]:
    """The converter's tensor plan for `hp` (llama.cpp loader order), with no checkpoint behind it."""
    big = OUTTYPES[outtype if outtype in OUTTYPES else "f32"][0]
    plans = [TensorPlan(name, shape, output_type(name, shape, big), source=hf) for name, hf, shape in expected_tensors(hp)]
    freqs = rope_freqs(hp)
    plans.append(TensorPlan("rope_freqs.weight", freqs.shape, GGMLQuantizationType.F32, generated=freqs))
    return sorted(plans, key=lambda p: (p.layer, p.name))


def _values(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` float32 values of tensor `name` at a realistic scale."""
    if name.endswith("layer_output_scale.weight"):
        return np.ones(n, dtype=np.float32)
    if name.endswith(("attn_q_norm.weight", "attn_k_norm.weight")):
        # Attention has scaling 1.0 after the q/k norms: weights around head_dim^-1/4 give scores
        # q.k of unit scale, as in a trained model (weights of 1 would make every head a near-hard
        # argmax, which no trained model is and which makes outputs hypersensitive).
        return ((1.0 + NORM_JITTER * rng.standard_normal(n, dtype=np.float32)) * n ** -0.25).astype(np.float32)
    if name.endswith(("norm.weight", ".scale")):
        return (1.0 + NORM_JITTER * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)
    x = rng.standard_normal(n, dtype=np.float32)
    x *= WEIGHT_STD
    return x


# NVFP4 second-level scale of N(0, WEIGHT_STD) weights: amax / (6 * 448) with amax ~ 5.5 sigma (the
# largest of a few million normal draws); larger values saturate at the E2M1 maximum.
NVFP4_SCALE = float(np.float32(5.5 * WEIGHT_STD / (6 * 448)))


def _encode(x: np.ndarray, qtype: GGMLQuantizationType) -> np.ndarray:
    if qtype == GGMLQuantizationType.F32:
        return x
    if qtype == GGMLQuantizationType.F16:
        return x.astype(np.float16)
    if qtype in (GGMLQuantizationType.BF16, GGMLQuantizationType.Q8_0):
        return quants.quantize(x, qtype)  # round to nearest even, as the converter does
    from . import _core  # our block quantizers (K-quants, Q5_0, NVFP4)

    scale = NVFP4_SCALE if qtype == GGMLQuantizationType.NVFP4 else 1.0
    return _core.quantize(int(qtype), np.ascontiguousarray(x, dtype=np.float32), scale)


def _mix_types(hp: HParams, vocab, tensors: list[TensorPlan], mix: str) -> dict[str, GGMLQuantizationType]:
    """Each tensor's type under `mix`, by diffgemma-quantize's rules: they depend on names, row
    lengths, expert counts and metadata only, so a probe file with one row per matrix (per expert)
    answers for the real one."""
    from . import _core

    def probe_shape(shape):
        return shape if len(shape) == 1 else (*shape[:-2], 1, shape[-1])

    probe_tensors = [TensorPlan(t.name, probe_shape(t.shape), GGMLQuantizationType.F32,
                                generated=np.zeros(probe_shape(t.shape), np.float32)) for t in tensors]
    with tempfile.TemporaryDirectory() as d:
        probe = Path(d) / "probe.gguf"
        _write_gguf(probe, build_metadata(hp, vocab, probe_tensors, "f32", "probe"), probe_tensors, seed=0)
        return {name: GGMLQuantizationType(t) for name, t in _core.quantization_plan(str(probe), mix)}


def _apply_mix(hp: HParams, vocab, tensors: list[TensorPlan], mix: str) -> list[TensorPlan]:
    """The tensor plan with the mix's types, plus the NVFP4 second-level `.scale` tensors."""
    types = _mix_types(hp, vocab, tensors, mix)
    out, nvfp4 = [], GGMLQuantizationType.NVFP4
    for t in tensors:
        qtype = types.get(t.name, t.qtype)
        out.append(dataclasses.replace(t, qtype=qtype))
        if qtype != nvfp4 or t.name.endswith("ffn_down_exps.weight"):
            continue  # the down projections' scale is folded into ffn_down_exps.scale (_values)
        n = t.shape[0] if len(t.shape) == 3 else 1
        out.append(TensorPlan(t.name[: -len(".weight")] + ".scale", (n,), GGMLQuantizationType.F32,
                              generated=np.full(n, NVFP4_SCALE, np.float32)))
    return out


POOL_ROWS = 256
POOLED = (GGMLQuantizationType.Q4_K, GGMLQuantizationType.Q5_K, GGMLQuantizationType.Q6_K,
          GGMLQuantizationType.Q5_0, GGMLQuantizationType.Q5_1, GGMLQuantizationType.NVFP4)


def _write_tensor(fout, t: TensorPlan, seed: int, fold_nvfp4: bool = False) -> int:
    if t.generated is not None:
        data = np.ascontiguousarray(t.generated, dtype=np.float32)
        fout.write(memoryview(data).cast("B"))
        return data.nbytes
    rng = np.random.default_rng([seed, zlib.crc32(t.name.encode())])
    n_cols = t.shape[-1]
    n_rows = t.numel // n_cols
    step = max(1, CHUNK_ELEMENTS // n_cols)
    if t.qtype in POOLED and n_rows > 4 * POOL_ROWS and not fold_nvfp4:
        pool = np.ascontiguousarray(_encode(_values(t.name, POOL_ROWS * n_cols, rng).reshape(POOL_ROWS, n_cols), t.qtype))
        pool = pool.reshape(POOL_ROWS, -1)
        written = 0
        for r0 in range(0, n_rows, step):
            chunk = np.ascontiguousarray(pool[rng.integers(0, POOL_ROWS, min(step, n_rows - r0))])
            fout.write(memoryview(chunk).cast("B"))
            written += chunk.nbytes
        return written
    # Values are drawn in order on this thread (the bytes depend on the seed only); encoding (our
    # C++ quantizers release the GIL) runs on every core, a bounded window of chunks at a time.
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    workers = os.cpu_count() or 1
    written = 0
    pending: deque = deque()

    def drain(keep: int) -> None:
        nonlocal written
        while len(pending) > keep:
            chunk = pending.popleft().result()
            fout.write(memoryview(chunk).cast("B"))
            written += chunk.nbytes

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for r0 in range(0, n_rows, step):
            rows = min(step, n_rows - r0)
            values = _values(t.name, rows * n_cols, rng).reshape(rows, n_cols)
            if fold_nvfp4:  # ffn_down_exps.scale of NVFP4 experts: per_expert_scale * second-level scale
                values = (values * np.float32(NVFP4_SCALE)).astype(np.float32)
            pending.append(pool.submit(lambda v: np.ascontiguousarray(_encode(v, t.qtype)), values))
            drain(2 * workers)
        drain(0)
    return written


OUTTYPE_CHOICES = (*OUTTYPES, *MIXES)


def write_synth(outfile: Path, n_layer: int, outtype: str = "bf16", seed: int = 0, pattern: str = "real",
                small: bool = False, progress: bool = False, wide: bool = False) -> Path:
    """Write the synthetic model; returns the path. small / wide: the test shapes (real_hparams).
    outtype: f32, f16, bf16, q8_0 (the converter's types) or a quantization mix (MIXES)."""
    if outtype not in OUTTYPE_CHOICES:
        raise ValueError(f"unknown outtype {outtype!r}; choose one of {', '.join(OUTTYPE_CHOICES)}")
    outfile = Path(outfile)
    hp = real_hparams(n_layer, pattern, small, wide)
    with tempfile.TemporaryDirectory() as tok_dir:
        write_gemma4_tokenizer_files(tok_dir, hp.vocab_size)
        vocab = load_vocab(Path(tok_dir))
    tensors = synth_tensors(hp, outtype)
    if outtype in MIXES:
        from . import _core

        tensors = _apply_mix(hp, vocab, tensors, outtype)
        kvs = build_metadata(hp, vocab, tensors, "f32", f"synthetic-{n_layer}L-{outtype}")
        kvs = [dataclasses.replace(kv, value=_core.quant_mix_file_type(outtype)) if kv.key == "general.file_type"
               else kv for kv in kvs]
    else:
        kvs = build_metadata(hp, vocab, tensors, outtype, f"synthetic-{n_layer}L-{outtype}")
    _write_gguf(outfile, kvs, tensors, seed, progress)
    return outfile


def _write_gguf(outfile: Path, kvs, tensors: list[TensorPlan], seed: int, progress: bool = False) -> None:
    types = {t.name: t.qtype for t in tensors}
    total, done = sum(t.nbytes for t in tensors), 0

    def write(fout, t: TensorPlan) -> int:
        fold = t.name.endswith("ffn_down_exps.scale") and \
            types.get(t.name[: -len(".scale")] + ".weight") == GGMLQuantizationType.NVFP4
        return _write_tensor(fout, t, seed, fold)

    def report(t: TensorPlan, n: int) -> None:
        nonlocal done
        done += n
        if progress and n >= 1 << 24:
            print(f"\r{done / 1e9:7.2f} / {total / 1e9:.2f} GB  {t.name:<40}", end="", file=sys.stderr, flush=True)

    write_gguf_file(outfile, kvs, tensors, write, report)
    if progress:
        print(file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="diffgemma-synth",
        description="Write a random-weight DiffusionGemma GGUF with the real model's per-layer shapes.",
    )
    ap.add_argument("--outfile", required=True, type=Path)
    ap.add_argument("--layers", type=int, default=6, help="number of layers (default 6: 5 sliding + 1 full)")
    ap.add_argument("--outtype", default="bf16", choices=OUTTYPE_CHOICES,
                    help="type of the big matrices (f32/f16/bf16/q8_0), or a quantization mix with "
                         "diffgemma-quantize's per-tensor rules (Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q5_0, NVFP4)")
    ap.add_argument("--pattern", default="real",
                    help="layer types: real (full when i %% 6 == 5), sliding, full, or S/F per layer (e.g. SF)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small", action="store_true", help="tiny shapes of the same structure (tests only)")
    ap.add_argument("--wide-small", action="store_true",
                    help="small shapes with 256-value rows, so K-quant blocks fit (tests only)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing output file")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.outfile.exists() and not a.force:
        print(f"error: {a.outfile} exists; pass --force to overwrite it", file=sys.stderr)
        return 2
    if not a.outfile.parent.is_dir():
        print(f"error: output directory {a.outfile.parent} does not exist", file=sys.stderr)
        return 2
    try:
        write_synth(a.outfile, a.layers, a.outtype, a.seed, a.pattern, a.small, progress=not a.quiet,
                    wide=a.wide_small)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not a.quiet:
        print(f"wrote {a.outfile} ({a.outfile.stat().st_size / 1e9:.2f} GB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
