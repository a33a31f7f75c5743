"""Every weight kernel against dequantize-then-matmul in float64 (issue 6), on odd shapes, on every
ISA path this CPU has (each forced in turn), through diffgemma._core.probe_linear /
probe_soft_embed (the engine's own matmul entry points).

Bounds (per output, |W| and |x| elementwise; d_b the 8-bit scale of activation block b, which is
amax_b / 127; eps = 2^-24):

- int8 kernels (fast path, each quantized format): the activations are rounded to
  xq = d_b * round(x / d_b), the weights are used exactly, the integer dot products are exact.
  * against W @ xq:  |y - ref| <= (n_blocks + 4) * 2 eps * sum |W| |xq|   (one fp32 product and one
    fused multiply-add per group, then the output scale)
  * against W @ x:   |y - W @ x| <= sum_b (d_b / 2) sum_{k in b} |W_k|  +  the bound above
- float kernels (exact path, any type): |y - W @ x| <= (K + 4) eps sum |W| |x|  (fp64 accumulation,
  one rounding; the generous K covers the fp32 weights' own decode rounding: none)
- bf16 soft embedding (fast path, AVX512-BF16, quantized W): p and W rounded to bfloat16 (relative
  2^-9 each), fp32 accumulation: |y - p @ W| <= (2 * 2^-8 + (R + 2) eps) sum |p| |W|
Every ISA path gives the same bytes (the bf16 kernel exists on one path only).
"""

from __future__ import annotations

import numpy as np
import pytest

from diffgemma import _core

EPS = 2.0 ** -24
TYPES = {  # ggml id: (name, values per block)
    8: ("Q8_0", 32), 2: ("Q4_0", 32), 3: ("Q4_1", 32), 6: ("Q5_0", 32), 7: ("Q5_1", 32),
    12: ("Q4_K", 256), 13: ("Q5_K", 256), 14: ("Q6_K", 256), 40: ("NVFP4", 64),
}
ISAS = ["scalar", "avx2", "avx2vnni", "avx512", "avx512bf16"]


def available_isas():
    """The ISA paths this CPU runs (set_isa caps at the CPU's best)."""
    before = _core.get_isa()
    seen = []
    try:
        for isa in ISAS:
            _core.set_isa(isa)
            if _core.get_isa() == isa:
                seen.append(isa)
    finally:
        _core.set_isa(before)
    return seen


def weights(type_id, n_out, n_in, seed, w=None):
    if w is None:
        rng = np.random.default_rng(seed)
        w = (0.02 * rng.standard_normal((n_out, n_in))).astype(np.float32)
        w[0, : min(5, n_in)] = [0.3, -0.25, 0.0, 1e-8, -0.07][: min(5, n_in)]  # outliers, zero, tiny
    scale = 1.0
    if TYPES[type_id][0] == "NVFP4":
        scale = _core.nvfp4_tensor_scale(w)
    blocks = np.concatenate([_core.quantize(type_id, row, scale) for row in w])
    wd = np.stack([_core.dequantize(type_id, blocks.reshape(n_out, -1)[o], n_in) for o in range(n_out)])
    return blocks, wd.astype(np.float64), scale


def quantize_acts(x):
    """The engine's 8-bit activations (q8_acts.h), in numpy: d = amax / 127, q = rint(x / d)."""
    xb = x.reshape(x.shape[0], -1, 32).astype(np.float32)
    d = (np.abs(xb).max(axis=2, keepdims=True) / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.rint((xb * inv).astype(np.float32))
    return (q.astype(np.float64) * d.astype(np.float64)).reshape(x.shape), d[..., 0].astype(np.float64)


def run_all_isas(fn):
    out = {}
    before = _core.get_isa()
    try:
        for isa in available_isas():
            _core.set_isa(isa)
            out[isa] = fn()
    finally:
        _core.set_isa(before)
    return out


SHAPES = [(1, 1), (5, 37), (13, 70)]  # (rows, outputs): tails of the 6/4/2-row tiles and 32-output panels


@pytest.mark.parametrize("type_id", sorted(TYPES), ids=lambda t: TYPES[t][0])
@pytest.mark.parametrize("rows,n_out", SHAPES)
def test_int8_kernels_within_activation_rounding(type_id, rows, n_out, kernels, request):
    name, block = TYPES[type_id]
    n_in = 3 * max(block, 64)  # 3 blocks of a K-quant, 6 of a legacy 32-block, 3 NVFP4 blocks
    blocks, wd, scale = weights(type_id, n_out, n_in, seed=rows * 100 + n_out)
    x = np.random.default_rng(rows).standard_normal((rows, n_in)).astype(np.float32)
    x[0, 3] = 40.0  # an outlier: its block's other values are rounded coarsely
    x[-1, 64:96] = 0.0  # an all-zero block (scale 0)
    xq, d = quantize_acts(x)
    kernels("fast")
    ys = run_all_isas(lambda: _core.probe_linear(type_id, blocks, n_out, n_in, scale, x))
    base = next(iter(ys.values()))
    for isa, y in ys.items():
        assert y.tobytes() == base.tobytes(), f"{name}: {isa} differs from {next(iter(ys))}"
    y = base.astype(np.float64)
    ref_q = (xq @ wd.T) * scale
    kernel_bound = (n_in / 32 + 4) * 2 * EPS * (np.abs(xq) @ np.abs(wd).T) * scale + 1e-30
    act_bound = ((d / 2) @ np.abs(wd).reshape(n_out, -1, 32).sum(axis=2).T) * scale
    err_q = np.abs(y - ref_q)
    err_x = np.abs(y - (x.astype(np.float64) @ wd.T) * scale)
    request.node.user_properties.append(("bound", f"{name} max |y-W.xq|/bound={float((err_q / kernel_bound).max()):.2f} "
                                                  f"max |y-W.x|/bound={float((err_x / (act_bound + kernel_bound)).max()):.2f}"))
    assert (err_q <= kernel_bound).all(), float((err_q / kernel_bound).max())
    assert (err_x <= act_bound + kernel_bound).all()
    assert err_x.max() > 0  # the activations really were rounded


@pytest.mark.parametrize("type_id", sorted(TYPES), ids=lambda t: TYPES[t][0])
def test_int8_kernels_at_extreme_codes(type_id, kernels):
    """Every code at its format's largest magnitude against activations all at +-127: the sums the
    kernels keep in narrow integers (the AVX2 path's int16 lanes, qgemm_avx2.inc) at their bound.
    Weight rows of one constant (+ and -: the symmetric formats' most negative code) and of one
    constant with a zero in every 32 (the formats with a min: every other code at the top), then
    random signs; each output against the float64 product of the same rounded inputs, and every
    ISA path the same bytes."""
    name, block = TYPES[type_id]
    n_in = 2 * max(block, 64)
    gapped = np.full(n_in, 0.05)
    gapped[::32] = 0.0
    signs = np.where(np.random.default_rng(5).random((4, n_in)) < 0.5, -1.0, 1.0)
    w = np.concatenate([np.full((1, n_in), 0.05), np.full((1, n_in), -0.05), gapped[None], -gapped[None],
                        0.05 * signs]).astype(np.float32)
    blocks, wd, scale = weights(type_id, len(w), n_in, seed=0, w=w)
    x = np.concatenate([np.ones((1, n_in)), -np.ones((1, n_in)),
                        np.where(np.random.default_rng(6).random((3, n_in)) < 0.5, -1.0, 1.0)]).astype(np.float32)
    xq, _ = quantize_acts(x)
    kernels("fast")
    ys = run_all_isas(lambda: _core.probe_linear(type_id, blocks, len(w), n_in, scale, x))
    base = next(iter(ys.values()))
    for isa, y in ys.items():
        assert y.tobytes() == base.tobytes(), f"{name}: {isa} differs from {next(iter(ys))}"
    ref = (xq @ wd.T) * scale
    bound = (n_in / 32 + 4) * 2 * EPS * (np.abs(xq) @ np.abs(wd).T) * scale + 1e-30
    assert (np.abs(base.astype(np.float64) - ref) <= bound).all(), float((np.abs(base - ref) / bound).max())


@pytest.mark.parametrize("type_id", [8, 12, 14, 40, 0, 30], ids=["Q8_0", "Q4_K", "Q6_K", "NVFP4", "F32", "BF16"])
def test_exact_kernels_are_float_exact(type_id, kernels):
    if type_id in TYPES:
        name, block = TYPES[type_id]
        n_in = 3 * max(block, 64)
        blocks, wd, scale = weights(type_id, 37, n_in, seed=4)
    else:  # plain float weights: the bytes themselves
        n_in, scale = 96, 1.0
        w = (0.02 * np.random.default_rng(4).standard_normal((37, n_in))).astype(np.float32)
        if type_id == 30:
            w = (w.view(np.uint32) & 0xFFFF0000).view(np.float32)  # bf16-representable
            blocks = (w.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
        else:
            blocks = w.view(np.uint8)
        wd = w.astype(np.float64)
    x = np.random.default_rng(9).standard_normal((5, n_in)).astype(np.float32)
    kernels("exact")
    ys = run_all_isas(lambda: _core.probe_linear(type_id, blocks.ravel(), 37, n_in, scale, x))
    base = next(iter(ys.values()))
    assert all(y.tobytes() == base.tobytes() for y in ys.values())
    ref = (x.astype(np.float64) @ wd.T) * scale
    bound = (n_in + 4) * EPS * (np.abs(x.astype(np.float64)) @ np.abs(wd).T) * scale + 1e-30
    assert (np.abs(base - ref) <= bound).all()


@pytest.mark.parametrize("type_id", [8, 14], ids=["Q8_0", "Q6_K"])
def test_soft_embed_kernels(type_id, kernels, request):
    name, block = TYPES[type_id]
    n_vocab, n_embd = 518, 2 * max(block, 64) + (32 if block == 32 else 0)
    blocks, wd, scale = weights(type_id, n_vocab, n_embd, seed=11)
    logits = np.random.default_rng(2).standard_normal((7, n_vocab)) * 4
    p = np.exp(logits - logits.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True)).astype(np.float32)
    ref = (p.astype(np.float64) @ wd) * scale
    mag = (np.abs(p.astype(np.float64)) @ np.abs(wd)) * scale
    for mode, threads in (("exact", 1), ("fast", 1), ("fast", 3)):  # 3 threads: column splits off 256
        kernels(mode)
        ys = run_all_isas(lambda: _core.probe_soft_embed(type_id, blocks, n_vocab, n_embd, scale, p, threads))
        for isa, y in ys.items():
            bf16 = mode == "fast" and isa == "avx512bf16"
            bound = (2 * 2.0 ** -8 + (n_vocab + 2) * EPS) * mag if bf16 else (n_vocab + 4) * EPS * mag
            err = np.abs(y - ref)
            request.node.user_properties.append(("bound", f"{name} {mode} {isa}: max err/bound {float((err / (bound + 1e-30)).max()):.3f}"))
            assert (err <= bound + 1e-30).all(), (mode, isa)
        # the float kernels agree across ISA paths
        same = [y for isa, y in ys.items() if not (mode == "fast" and isa == "avx512bf16")]
        assert all(y.tobytes() == same[0].tobytes() for y in same)


def requantize_columns(wd):
    """soft_embed_q8.h's weights in numpy: per column and block of 32 rows, s = amax / 127,
    c = rint(W * (1 / s)); returns (s * c, s) in float64, s of shape [rows / 32, columns]."""
    wb = wd.astype(np.float32).reshape(-1, 32, wd.shape[1])
    s = (np.abs(wb).max(axis=1, keepdims=True) / np.float32(127)).astype(np.float32)
    inv = np.where(s != 0, np.float32(1) / np.where(s != 0, s, 1), 0).astype(np.float32)
    c = np.rint((wb * inv).astype(np.float32))
    return (c.astype(np.float64) * s.astype(np.float64)).reshape(wd.shape), s[:, 0, :].astype(np.float64)


@pytest.mark.parametrize("type_id", [8, 14, 12, 40], ids=["Q8_0", "Q6_K", "Q4_K", "NVFP4"])
def test_int8_soft_embed_within_rounding(type_id, kernels, request):
    """The fast path's int8 soft embedding (soft_embed_q8.h: vocabulary a multiple of 32): p and
    W's columns each rounded to 8 bits per 32 vocabulary rows, integer products, fp32 chains.
    Against pq @ Wq: the int8 kernel bound; against p @ W: plus half a step of each rounding,
    sum_b [(d_b / 2) sum_r |Wq_r| + (s_b / 2) sum_r |p_r|]. Same bytes on every ISA path and for
    1 and 3 threads (column splits off the 256-column spans)."""
    name, block = TYPES[type_id]
    n_vocab, n_embd = 544, 2 * max(block, 64) + (32 if block == 32 else 0)
    blocks, wd, scale = weights(type_id, n_vocab, n_embd, seed=13)
    logits = np.random.default_rng(3).standard_normal((7, n_vocab)) * 4
    logits[1] *= 4  # one sharply peaked row
    p = np.exp(logits - logits.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True)).astype(np.float32)
    p[2, 64:96] = 0.0  # an all-zero block of probabilities
    pq, d = quantize_acts(p)
    wq, s = requantize_columns(wd)
    kernels("fast")
    ys = {}
    for threads in (1, 3):
        for isa, y in run_all_isas(lambda: _core.probe_soft_embed(type_id, blocks, n_vocab, n_embd, scale, p, threads)).items():
            ys[(isa, threads)] = y
    base = next(iter(ys.values()))
    for key, y in ys.items():
        assert y.tobytes() == base.tobytes(), f"{name}: {key} differs"
    y = base.astype(np.float64)
    nb = n_vocab // 32
    kernel_bound = (nb + 4) * 2 * EPS * (np.abs(pq) @ np.abs(wq)) * scale + 1e-30
    round_bound = ((d / 2) @ np.abs(wq).reshape(nb, 32, -1).sum(axis=1)
                   + np.abs(p.astype(np.float64)).reshape(7, nb, 32).sum(axis=2) @ (s / 2)) * scale
    err_q = np.abs(y - (pq @ wq) * scale)
    err_x = np.abs(y - (p.astype(np.float64) @ wd) * scale)
    mag = (np.abs(p.astype(np.float64)) @ np.abs(wd)) * scale
    request.node.user_properties.append(("bound", f"{name} max |y-pq.Wq|/bound={float((err_q / kernel_bound).max()):.2f} "
                                                  f"max |y-p.W|/bound={float((err_x / (round_bound + kernel_bound)).max()):.2f} "
                                                  f"max |y-p.W|/(|p|.|W|)={float((err_x / mag).max()):.2e}"))
    assert (err_q <= kernel_bound).all(), float((err_q / kernel_bound).max())
    assert (err_x <= round_bound + kernel_bound).all()
    assert err_x.max() > 0  # the rounding really happened
