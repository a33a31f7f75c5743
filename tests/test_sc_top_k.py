"""The opt-in top-k self-conditioning (issue 7; ContextParams::sc_top_k, --diffusion-sc-top-k,
DiffGemma(sc_top_k=...)): softmax(sc_logits) @ E over each position's k most probable tokens only.

- Where a position has at most k tokens of non-zero probability the approximation is exact: the
  logits equal the exact soft embedding's (same kernels) within fp32 rounding.
- On the model's own logits its error shrinks as k grows (mean KL of the next step's logits from
  the exact ones, reported), and a whole generation with k = 256 is reported against the exact one.
  (A random-weight model's distributions are nearly flat, the worst case for a top-k cut: the
  figures bound what a trained model's peaked distributions lose.)
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from diffgemma import DiffGemma, _core
from diffgemma.synth import write_synth

from test_fast_path import mean_kl


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    import diffgemma

    d = tmp_path_factory.mktemp("sctopk")
    f32 = write_synth(d / "wide-f32.gguf", n_layer=4, outtype="f32", wide=True, seed=9)
    q8 = d / "wide-q8_0.gguf"
    diffgemma.quantize(f32, q8, "Q8_0")
    return q8


def step_logits(path, sc_logits, k, canvas, prompt):
    m = _core.Model.load(str(path), n_threads=2)
    ctx = _core.Context(m, n_ctx=256, sc_top_k=k)
    ctx.encode(prompt)
    return ctx.denoise(canvas, sc_logits).astype(np.float64)


def inputs(path):
    m = _core.Model.load(str(path), n_threads=2)
    rng = np.random.default_rng(3)
    V, C = m.n_vocab, m.canvas_length
    return V, C, rng.integers(5, V, 21).astype(np.int32), rng.integers(5, V, C).astype(np.int32)


def test_top_k_is_exact_when_the_rest_has_no_mass(wide, kernels):
    # exact kernels: the fast path's dense soft embedding is itself bf16-rounded (AVX512-BF16)
    kernels("exact")
    V, C, prompt, canvas = inputs(wide)
    rng = np.random.default_rng(4)
    k = 24
    sc = np.full((C, V), -1e30, np.float32)  # exp underflows to exactly 0 on every path
    for t in range(C):
        sc[t, rng.choice(V, k, replace=False)] = rng.standard_normal(k) * 3
    exact = step_logits(wide, sc, 0, canvas, prompt)
    top = step_logits(wide, sc, k, canvas, prompt)
    assert np.abs(top - exact).max() <= 1e-4 * max(1.0, np.abs(exact).max())
    # ... and k above the number of live tokens changes nothing either
    assert np.abs(step_logits(wide, sc, 3 * k, canvas, prompt) - exact).max() <= 1e-4 * max(1.0, np.abs(exact).max())


def test_top_k_error_shrinks_with_k(wide, kernels, request):
    kernels("fast")
    V, C, prompt, canvas = inputs(wide)
    m = _core.Model.load(str(wide), n_threads=2)
    ctx = _core.Context(m, n_ctx=256)
    ctx.encode(prompt)
    sc = ctx.denoise(canvas) / np.float32(0.8)  # the first step's scaled logits, as generate() feeds them
    exact = step_logits(wide, sc, 0, canvas, prompt)
    kls = {k: mean_kl(exact, step_logits(wide, sc, k, canvas, prompt)) for k in (16, 64, 256, V // 2)}
    errs = {k: float(np.abs(step_logits(wide, sc, k, canvas, prompt) - exact).max()) for k in (16, 256)}
    line = " ".join(f"k={k}: KL={v:.2e}" for k, v in kls.items()) + f" | max logit err k=16 {errs[16]:.2e}, k=256 {errs[256]:.2e}"
    request.node.user_properties.append(("sc_top_k", line))
    print(f"\n[sc_top_k] vocab {V}: {line}")
    ks = sorted(kls)
    assert all(kls[a] >= kls[b] for a, b in zip(ks, ks[1:]))
    assert kls[ks[0]] > kls[ks[-1]]


def test_generation_with_top_k(wide, kernels, request):
    kernels("fast")
    kw = dict(max_new_tokens=64, seed=5, max_denoising_steps=8, eos_token_id=[])  # no EOS: 64 tokens
    exact = DiffGemma(wide, n_threads=2).generate([2, 10, 11, 12], **kw)
    approx = DiffGemma(wide, n_threads=2, sc_top_k=256).generate([2, 10, 11, 12], **kw)
    a, b = np.array(exact["tokens"]), np.array(approx["tokens"])
    n = min(len(a), len(b))
    agree = float(np.mean(a[:n] == b[:n])) if n else 1.0
    line = f"tokens agreeing with the exact soft embedding: {agree:.3f} of {n} (steps {exact['stats']['denoising_steps']} vs {approx['stats']['denoising_steps']})"
    request.node.user_properties.append(("sc_top_k_generation", line))
    print(f"\n[sc_top_k=256] {line}")
    assert len(b) == 64


def test_bad_top_k(wide):
    with pytest.raises(ValueError):
        DiffGemma(wide, sc_top_k=-1)
    m = _core.Model.load(str(wide))
    with pytest.raises(_core.Error):
        _core.Context(m, sc_top_k=-3)
    r = subprocess.run(["diffgemma-cli", "-m", str(wide), "--prompt-ids", "2,5", "--diffusion-sc-top-k", "x"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--diffusion-sc-top-k" in r.stderr
    r = subprocess.run(["diffgemma-cli", "-m", str(wide), "--prompt-ids", "2,5", "-n", "8", "--diffusion-steps", "2",
                        "--diffusion-sc-top-k", "32", "--kernels", "fast"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
