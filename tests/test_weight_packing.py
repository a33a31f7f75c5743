"""The packed-panel layout (engine/src/cpu/qpack.h): matrices of Q8_0, Q4_0, Q5_0 and Q4_K that the
int8 kernels read (experts, projections, MLPs) are rewritten at load (fast kernels, AVX-512) in
the order those kernels read them.

Packing must change nothing but speed:
- restoring the packed bytes gives the file's bytes back, exactly (and gguf-py dequantizes them
  to the same values);
- a product through packed weights is byte-identical to one through the original weights, on
  every ISA path;
- a model's logits are byte-identical with DIFFGEMMA_REPACK=0 and with packing, on the fast path
  (every ISA path, 1 and 2 threads) and after switching a packed model to the exact and reference
  kernels (which read restored rows);
- packing happens only where it applies (packed_bytes), and resident memory stays about the
  file's size (the file's pages of packed tensors are released).
"""

from __future__ import annotations

import os

import gguf
import numpy as np
import pytest

from diffgemma import _core
from diffgemma.synth import write_synth

from test_fast_path import step_logits
from test_kernel_bounds import available_isas, run_all_isas, weights

PACKED = {8: "Q8_0", 2: "Q4_0", 6: "Q5_0", 12: "Q4_K"}  # ggml id: name
NOT_PACKED = {3: "Q4_1", 7: "Q5_1", 13: "Q5_K", 14: "Q6_K", 40: "NVFP4", 0: "F32"}


def n_in_of(type_id):
    return 512 if type_id == 12 else 96


def read_packed(type_id, packed, n_out, n_in):
    """The values of a packed matrix, read by the layout documented in qpack.h (numpy, float64)."""
    name = PACKED[type_id]
    block, bb = {"Q8_0": (32, 34), "Q4_0": (32, 18), "Q5_0": (32, 22), "Q4_K": (256, 144)}[name]
    buf = np.frombuffer(packed, np.uint8)
    out = np.zeros((n_out, n_in))
    o = np.arange(32)
    kk = np.arange(block)
    j, i = kk // 4, kk % 4
    for P in range(n_out // 32):
        for b in range(n_in // block):
            ch = buf[(P * (n_in // block) + b) * 32 * bb:][: 32 * bb]
            if name == "Q8_0":
                d = ch[:64].view(np.float16).astype(np.float64)
                q = ch[64:].view(np.int8)[(j[None, :] * 128 + o[:, None] * 4 + i[None, :])]
                vals = d[:, None] * q
            else:
                nib_at = 512 if name == "Q4_K" else (192 if name == "Q5_0" else 64)
                byte = ch[nib_at + j[None, :] * 64 + (o[:, None] % 16) * 4 + i[None, :]]
                u = np.where(o[:, None] < 16, byte & 15, byte >> 4).astype(np.int64)
                if name == "Q5_0":
                    words = ch[64:192].view(np.uint64)
                    w = words[j[None, :] * 2 + o[:, None] // 16]
                    u |= (((w >> (4 * (o[:, None] % 16) + i[None, :]).astype(np.uint64)) & 1) << 4).astype(np.int64)
                if name == "Q4_K":
                    d = ch[:64].view(np.float16).astype(np.float64)
                    dmin = ch[64:128].view(np.float16).astype(np.float64)
                    slo = ch[128:384].reshape(16, 16).astype(np.int64)
                    shi = ch[384:512].view(np.uint64)
                    s6 = np.array([[((slo[s, oo % 16] >> (0 if oo < 16 else 4)) & 15)
                                    | (int((int(shi[s]) >> (2 * oo)) & 3) << 4) for s in range(16)] for oo in range(32)])
                    vals = d[:, None] * s6[:, kk // 32] * u - dmin[:, None] * s6[:, 8 + kk // 32]
                else:
                    d = ch[:64].view(np.float16).astype(np.float64)
                    vals = d[:, None] * (u - (16 if name == "Q5_0" else 8))
            out[P * 32:(P + 1) * 32, b * block:(b + 1) * block] = vals
    return out


@pytest.mark.parametrize("type_id", sorted(PACKED), ids=lambda t: PACKED[t])
@pytest.mark.parametrize("wide", [False, True], ids=["n_in", "2n_in"])  # 96 values: the scalar packer
def test_packed_layout_as_documented_and_restored_exactly(type_id, wide):
    n_out, n_in = 64, n_in_of(type_id) * (2 if wide else 1)
    blocks, _, _ = weights(type_id, n_out, n_in, seed=type_id)
    rng = np.random.default_rng(type_id)
    raw = rng.integers(0, 256, size=blocks.size, dtype=np.uint8)  # every bit pattern, not only quantizer output
    if PACKED[type_id] != "Q4_K":  # keep the fp16 scales finite so values compare
        per_row = raw.reshape(n_out, -1, {8: 34, 2: 18, 6: 22}[type_id])
        per_row[:, :, 1] &= 0x3B
    else:
        per_row = raw.reshape(n_out, -1, 144)
        per_row[:, :, 1] &= 0x3B
        per_row[:, :, 3] &= 0x3B
    qt = gguf.GGMLQuantizationType(type_id)
    for src in (blocks.astype(np.uint8), raw):
        packed, restored = _core.probe_pack(type_id, src.tobytes(), n_out, n_in)
        assert len(packed) == src.size and packed != src.tobytes()
        assert restored == src.tobytes()
        # gguf-py's dequantization of the original = the documented reading of the packed bytes.
        want = gguf.quants.dequantize(src.reshape(n_out, -1), qt).astype(np.float64)
        np.testing.assert_allclose(read_packed(type_id, packed, n_out, n_in), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("type_id", sorted(PACKED), ids=lambda t: PACKED[t])
def test_every_isa_packs_the_same_bytes(type_id):
    n_out, n_in = 96, 2 * n_in_of(type_id)  # a multiple of 64 values: the AVX-512 packer applies
    blocks, _, _ = weights(type_id, n_out, n_in, seed=3)
    out = run_all_isas(lambda: _core.probe_pack(type_id, blocks.tobytes(), n_out, n_in)[0])
    assert len(set(out.values())) == 1, sorted(out)


def test_packing_applies_only_to_its_types_and_whole_panels():
    for t in PACKED:
        assert _core.probe_pack_applies(t, 64, n_in_of(t))
        assert not _core.probe_pack_applies(t, 48, n_in_of(t))  # not whole 32-row panels
    for t in NOT_PACKED:
        assert not _core.probe_pack_applies(t, 64, 256)
    with pytest.raises(Exception, match="no packed layout"):
        _core.probe_pack(14, bytes(64 * 210), 64, 256)


@pytest.fixture
def q5_0_direct():
    """q5_0_direct(mode): packed Q5_0 read in place (1) or staged (0) for one test; the CPU's
    default is restored afterwards."""
    yield _core.set_q5_0_direct
    _core.set_q5_0_direct(-1)


# Q5_0 both ways (cpu_features.h's q5_0_direct, a speed choice per CPU: read in place or staged);
# the switch does not touch the other formats (-1: the CPU's default)
TYPE_MODES = [(t, m) for t in sorted(PACKED) for m in ((0, 1) if PACKED[t] == "Q5_0" else (-1,))]


@pytest.mark.parametrize("type_id,q5_mode", TYPE_MODES,
                         ids=[PACKED[t] + {-1: "", 0: "-staged", 1: "-in-place"}[m] for t, m in TYPE_MODES])
@pytest.mark.parametrize("rows", [1, 7, 16])
# 2816 (the model's width): several 1024-value chunks and a short last one, read in place by the
# AVX-512 kernels for packed weights (qgemm_direct.h)
@pytest.mark.parametrize("width", ["2n_in", "2816"])
def test_packed_product_is_byte_identical(type_id, q5_mode, rows, width, kernels, q5_0_direct):
    q5_0_direct(q5_mode)
    if q5_mode >= 0:
        assert _core.get_q5_0_direct() == q5_mode
    n_out, n_in = 96, n_in_of(type_id) * 2 if width == "2n_in" else 2816
    blocks, _, _ = weights(type_id, n_out, n_in, seed=rows)
    x = np.random.default_rng(rows).standard_normal((rows, n_in)).astype(np.float32)
    kernels("fast")
    plain = run_all_isas(lambda: _core.probe_linear(type_id, blocks, n_out, n_in, 1.0, x))
    packed = run_all_isas(lambda: _core.probe_linear(type_id, blocks, n_out, n_in, 1.0, x, packed=True))
    for isa in plain:
        assert packed[isa].tobytes() == plain[isa].tobytes(), f"{PACKED[type_id]} on {isa}"


def test_q5_0_direct_switch_defaults_by_cpu():
    """-1 restores the CPU's default: in place on AMD, staged elsewhere (or DIFFGEMMA_Q5_0_DIRECT)."""
    import platform

    _core.set_q5_0_direct(1)
    assert _core.get_q5_0_direct() == 1
    _core.set_q5_0_direct(-1)
    env = os.environ.get("DIFFGEMMA_Q5_0_DIRECT")
    if env in ("0", "1"):
        assert _core.get_q5_0_direct() == int(env)
    elif platform.machine() in ("x86_64", "AMD64"):
        with open("/proc/cpuinfo") as f:
            amd = "AuthenticAMD" in f.read()
        assert _core.get_q5_0_direct() == (1 if amd else 0)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("pack")
    return {mix: write_synth(d / f"{mix}.gguf", n_layer=2, outtype=mix, wide=True, seed=5)
            for mix in ("Q8_0", "Q4_K_M", "Q5_0")}


def load(path, repack, n_threads=2):
    old = os.environ.get("DIFFGEMMA_REPACK")
    os.environ["DIFFGEMMA_REPACK"] = "1" if repack else "0"
    try:
        return _core.Model.load(str(path), n_threads=n_threads)
    finally:
        if old is None:
            del os.environ["DIFFGEMMA_REPACK"]
        else:
            os.environ["DIFFGEMMA_REPACK"] = old


def packable_bytes(path):
    """Bytes of the matrices pack_weights packs: a packed type, whole 32-row panels (per expert),
    read only by matmul (not the token embedding: rows are looked up, and the soft embedding)."""
    total = 0
    for t in gguf.GGUFReader(str(path)).tensors:
        rows = int(t.shape[1]) if len(t.shape) > 1 else 0
        if int(t.tensor_type) in PACKED and rows % 32 == 0 and t.name != "token_embd.weight":
            total += int(t.n_bytes)
    return total


@pytest.mark.parametrize("mix,q5_mode", [("Q8_0", -1), ("Q4_K_M", 0), ("Q4_K_M", 1), ("Q5_0", 0), ("Q5_0", 1)])
def test_packed_model_logits_are_byte_identical(mix, q5_mode, models, kernels, q5_0_direct):
    if "avx512" not in available_isas():
        pytest.skip("packing runs on AVX-512 CPUs only")
    q5_0_direct(q5_mode)
    path = models[mix]
    kernels("fast")
    packed, plain = load(path, True), load(path, False, n_threads=1)
    assert plain.packed_bytes == 0
    assert packed.packed_bytes == packable_bytes(path) > 0
    for isa in available_isas():  # the kernels unpack on every ISA path (scalar included)
        before = _core.get_isa()
        _core.set_isa(isa)
        try:
            assert step_logits(packed).tobytes() == step_logits(plain).tobytes(), f"{mix} on {isa}"
        finally:
            _core.set_isa(before)
    for mode in ("exact", "reference"):  # these read the packed experts' rows restored
        kernels(mode)
        assert step_logits(packed).tobytes() == step_logits(plain).tobytes(), f"{mix} with {mode} kernels"


def test_packing_is_off_on_the_exact_path_and_by_environment(models, kernels):
    path = models["Q8_0"]
    kernels("exact")
    assert load(path, True).packed_bytes == 0
    kernels("fast")
    assert load(path, False).packed_bytes == 0
