"""The CPU kernel paths (issues 6 and 7: gemm.cpp, qgemm.cpp, blocked attention, grouped MoE, vector
math) through whole forward passes on tiny models with odd shapes:

- every ISA path (DIFFGEMMA_ISA=scalar / avx2 / avx2vnni / avx512, each capped at what this CPU
  has) gives bit-identical outputs, for the exact (fp64-accumulating) and the fast (8-bit
  activations on quantized weights, fp32 accumulation, vector exp) kernels;
- each kernel mode is bit-identical across thread counts;
- exact vs reference: within 5e-5 relative on logits and cache after 6 layers (both accumulate in fp64; they
  differ only in summation order before each fp32 rounding, and 1-ulp differences grow through layers);
- fast vs exact on float weights (no 8-bit activations there): within 5e-4 relative (fp32
  accumulation and the vector exp). On quantized weights the fast path's bound is a KL bound
  (test_fast_path.py).

The kernel mode and ISA are read from the environment once per process, so every run is a
subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from diffgemma.synth import write_synth

RUNNER = r"""
import sys, json, numpy as np
from diffgemma import _core
path, threads, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = _core.Model.load(path, n_threads=threads)
V = m.n_vocab if hasattr(m, "n_vocab") else None
rng = np.random.default_rng(7)
ctx = _core.Context(m, n_ctx=128, n_batch=0)
prompt = rng.integers(5, 500, size=37).astype(np.int32)
canvas = rng.integers(5, 500, size=16).astype(np.int32)
ctx.encode(prompt)
l1 = ctx.denoise(canvas)
l2 = ctx.denoise(canvas, l1)
ctx.commit(canvas)
kv = [np.concatenate([a.ravel() for a in ctx.kv(il)]) for il in range(m.n_layer)]
np.savez(out, l1=l1, l2=l2, kv=np.concatenate(kv))
"""


# The whole loop (denoising, the vocabulary pass's softmax / entropy / sampling, commits).
GEN_RUNNER = r"""
import sys, json, numpy as np
from diffgemma import _core
path, threads, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = _core.Model.load(path, n_threads=threads)
ctx = _core.Context(m, n_ctx=160, n_batch=0)
steps = []
def cb(ev):
    if ev["type"] == "draft":
        steps.append(np.concatenate([ev["argmax"], ev["next"], ev["accepted"].astype(np.int32),
                                     np.array([ev["mean_entropy"]], np.float32).view(np.int32)]))
r = _core.generate(ctx, list(range(5, 42)), max_new_tokens=40, seed=11, eos_token_id=[], max_denoising_steps=4,
                   entropy_bound=0.5, callback=cb)
np.savez(out, tokens=r["tokens"], steps=np.concatenate(steps))
"""


def run(path, tmp_path, tag, threads=2, runner=None, **env):
    out = tmp_path / f"{tag}.npz"
    e = dict(os.environ)
    e.pop("DIFFGEMMA_KERNELS", None)
    e.pop("DIFFGEMMA_ISA", None)
    e.update(env)
    r = subprocess.run([sys.executable, "-c", runner or RUNNER, str(path), str(threads), str(out)], env=e,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with np.load(out) as z:
        return {k: z[k].copy() for k in z.files}


def same_bits(a, b):
    return all(a[k].tobytes() == b[k].tobytes() for k in a)


def rel_err(a, b):
    return max(float(np.max(np.abs(a[k] - b[k])) / (np.max(np.abs(b[k])) + 1e-30)) for k in a)


@pytest.fixture(scope="module", params=["tiny_odd-f32", "tiny_odd-bf16", "tiny-q8_0", "synth-q8_0", "synth-f16"])
def model(request, tiny_gguf, tmp_path_factory):
    name, outtype = request.param.split("-")
    if name == "synth":  # the issue-7 synthetic structure at small shapes: 8 experts top-2, 5:1 layers
        path = tmp_path_factory.mktemp("synth") / f"small-{outtype}.gguf"
        write_synth(path, n_layer=6, outtype=outtype, small=True, seed=3)
        return path
    return tiny_gguf(name, outtype)


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_isa_paths_are_bit_identical(model, tmp_path, mode):
    base = run(model, tmp_path, f"{mode}-scalar", DIFFGEMMA_KERNELS=mode, DIFFGEMMA_ISA="scalar")
    for isa in ("avx2", "avx2vnni", "avx512"):
        assert same_bits(run(model, tmp_path, f"{mode}-{isa}", DIFFGEMMA_KERNELS=mode, DIFFGEMMA_ISA=isa), base), isa


def test_generation_isa_paths_are_bit_identical(tmp_path):
    """Drafts (argmax, sampled tokens, acceptance, mean entropy) and output of the fast path's whole
    loop on every ISA path: the vocabulary pass has its own vector code (vecmath.cpp)."""
    path = tmp_path / "small-q4km.gguf"
    write_synth(path, n_layer=2, outtype="Q4_K_M", small=True, seed=4)
    base = run(path, tmp_path, "gen-scalar", runner=GEN_RUNNER, DIFFGEMMA_KERNELS="fast", DIFFGEMMA_ISA="scalar")
    assert len(base["tokens"]) == 40
    for isa in ("avx2", "avx2vnni", "avx512"):
        got = run(path, tmp_path, f"gen-{isa}", runner=GEN_RUNNER, DIFFGEMMA_KERNELS="fast", DIFFGEMMA_ISA=isa)
        assert same_bits(got, base), isa


@pytest.mark.parametrize("mode", ["exact", "fast", "reference"])
def test_thread_count_invariance(model, tmp_path, mode):
    base = run(model, tmp_path, f"{mode}-t1", threads=1, DIFFGEMMA_KERNELS=mode)
    for t in (2, 3):
        assert same_bits(run(model, tmp_path, f"{mode}-t{t}", threads=t, DIFFGEMMA_KERNELS=mode), base), t


def test_exact_and_fast_against_reference(model, tmp_path, request):
    ref = run(model, tmp_path, "reference", DIFFGEMMA_KERNELS="reference")
    exact = run(model, tmp_path, "exact", DIFFGEMMA_KERNELS="exact")
    fast = run(model, tmp_path, "fast", DIFFGEMMA_KERNELS="fast")
    e_exact, e_fast = rel_err(exact, ref), rel_err(fast, exact)
    print(f"[{request.node.name}] exact_vs_reference={e_exact:.2e} fast_vs_exact={e_fast:.2e}")
    assert e_exact <= 5e-5
    assert not same_bits(fast, exact)  # the fast path really ran
    if "q8_0" not in request.node.name:  # float weights: fp32 accumulation only
        assert e_fast <= 5e-4
