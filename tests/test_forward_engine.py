"""Engine properties of the forward pass (issue 3): bit-identical results for any thread count
and any prefill chunking, the decoder never writes the cache, the layout variants of
gguf-layout.md §7.5 load and give the same bits, and bad model files or inputs raise clear
Python exceptions."""

from __future__ import annotations

import numpy as np
import pytest

from forward_support import core, make_scenario, rewrite_gguf

NAME = "tiny"  # 5 sliding + 1 full layer, window 16, canvas 16, V = 512


@pytest.fixture(scope="module")
def gguf_path(tiny_gguf):
    return tiny_gguf(NAME, "f32")


@pytest.fixture(scope="module")
def scenario():
    return make_scenario(512, 16, 16, seed=3)


def run_bytes(path, sc, n_threads=2, n_batch=0, prompt_splits=None):
    """Scenario outputs as raw bytes: logits, self-conditioned logits and every cache entry."""
    c = core()
    model = c.Model.load(str(path), n_threads=n_threads)
    ctx = c.Context(model, n_ctx=256, n_batch=n_batch)
    if prompt_splits is None:
        ctx.encode(sc.prompt)
    else:
        for part in np.split(sc.prompt, prompt_splits):
            ctx.encode(part)
    for canvas in sc.commits:
        ctx.commit(canvas)
    out = [ctx.denoise(sc.canvas).tobytes(), ctx.denoise(sc.canvas, sc.sc_logits).tobytes()]
    for il in range(model.n_layer):
        k, v = ctx.kv(il)
        out += [k.tobytes(), v.tobytes(), ctx.kv_pos0(il)]
    return out


def test_thread_count_invariance(gguf_path, scenario):
    base = run_bytes(gguf_path, scenario, n_threads=1)
    assert run_bytes(gguf_path, scenario, n_threads=2) == base
    assert run_bytes(gguf_path, scenario, n_threads=3) == base


def test_default_thread_count_is_physical_cores(gguf_path):
    import os

    n = core().Model.load(str(gguf_path)).n_threads  # n_threads=0: one per physical core
    assert 1 <= n <= (os.cpu_count() or 1)
    assert core().Model.load(str(gguf_path), n_threads=3).n_threads == 3


def test_prefill_chunking_invariance(gguf_path, scenario):
    # The 37-token prompt in one pass, in chunks of n_batch = 16 rows (the smallest n_batch that
    # still holds a canvas), and as several encode calls of uneven length.
    base = run_bytes(gguf_path, scenario, n_batch=64)
    assert run_bytes(gguf_path, scenario, n_batch=16) == base  # prompt in 3 chunks, canvases whole
    assert run_bytes(gguf_path, scenario, prompt_splits=[1, 2, 15, 30]) == base
    assert run_bytes(gguf_path, scenario, n_batch=16, prompt_splits=[7, 20]) == base


def test_small_chunks_keep_the_cache_exact(gguf_path, scenario):
    """Chunks smaller than the canvas: compare the cache after prefill + commits."""
    c = core()
    model = c.Model.load(str(gguf_path), n_threads=2)

    def cache_after(n_batch):
        ctx = c.Context(model, n_ctx=256, n_batch=n_batch)
        ctx.encode(scenario.prompt)
        for canvas in scenario.commits:
            ctx.commit(canvas)
        return ctx.n_past, [tuple(a.tobytes() for a in ctx.kv(il)) for il in range(model.n_layer)]

    assert cache_after(3) == cache_after(0)


def test_decoder_reads_but_never_writes_the_cache(gguf_path, scenario):
    c = core()
    ctx = c.Context(c.Model.load(str(gguf_path), n_threads=2), n_ctx=256)
    ctx.encode(scenario.prompt)
    before = [tuple(a.tobytes() for a in ctx.kv(il)) for il in range(6)]
    first = ctx.denoise(scenario.canvas)
    ctx.denoise(scenario.commits[0], scenario.sc_logits)
    assert ctx.n_past == len(scenario.prompt)
    assert [tuple(a.tobytes() for a in ctx.kv(il)) for il in range(6)] == before
    assert ctx.denoise(scenario.canvas).tobytes() == first.tobytes()
    ctx.commit(scenario.canvas)
    assert ctx.n_past == len(scenario.prompt) + 16


def test_logits_are_softcapped_float32(gguf_path, scenario):
    c = core()
    ctx = c.Context(c.Model.load(str(gguf_path), n_threads=2), n_ctx=256)
    ctx.encode(scenario.prompt)
    logits = ctx.denoise(scenario.canvas)
    assert logits.dtype == np.float32 and logits.shape == (16, 512)
    assert np.all(np.abs(logits) < 30.0)


def test_hidden_states_of_the_last_pass(gguf_path, scenario):
    """The last layer's recorded output, pushed through the final norm and tied head by hand,
    reproduces the returned logits."""
    c = core()
    model = c.Model.load(str(gguf_path), n_threads=2)
    ctx = c.Context(model, n_ctx=256, record_hidden=True)
    ctx.encode(scenario.prompt)
    assert ctx.hidden(0).shape == (len(scenario.prompt), 64)
    logits = ctx.denoise(scenario.canvas)
    h = ctx.hidden(5).astype(np.float64)
    assert h.shape == (16, 64)
    g = c.GGUFFile(str(gguf_path))
    norm_w = np.asarray(g.tensor("output_norm.weight"), dtype=np.float64)
    emb = np.asarray(g.tensor("token_embd.weight"), dtype=np.float64)
    y = h / np.sqrt(np.mean(h * h, axis=-1, keepdims=True) + 1e-6) * norm_w
    expect = 30.0 * np.tanh((y @ emb.T) / 30.0)
    assert np.max(np.abs(expect - logits)) < 1e-5


# --- layout variants (gguf-layout.md §7.5): each must give bit-identical results


def _split_experts(t):
    items = list(t.items())
    t.clear()
    for name, data in items:
        if name.endswith("ffn_gate_up_exps.weight"):
            half = data.shape[1] // 2  # numpy shape [E, 2I, H]: gate rows first
            t[name.replace("gate_up", "gate")] = np.ascontiguousarray(data[:, :half])
            t[name.replace("gate_up", "up")] = np.ascontiguousarray(data[:, half:])
        else:
            t[name] = data


def _scalar_keys(f):
    import gguf

    f["diffusion-gemma.attention.sliding_window_pattern"] = (6, gguf.GGUFValueType.UINT32, None)


@pytest.mark.parametrize("variant", ["split_experts", "output_weight", "scalar_pattern"])
def test_layout_variants_give_identical_results(variant, gguf_path, scenario, tmp_path):
    edits = {
        "split_experts": dict(tensors_edit=_split_experts),
        "output_weight": dict(tensors_edit=lambda t: t.__setitem__("output.weight", t["token_embd.weight"].copy())),
        "scalar_pattern": dict(kv_edit=_scalar_keys),
    }[variant]
    path = rewrite_gguf(gguf_path, tmp_path / f"{variant}.gguf", **edits)
    model = core().Model.load(str(path), n_threads=2)
    if variant == "split_experts":
        assert not model.experts_fused
    if variant == "output_weight":
        assert model.has_output_weight
    assert run_bytes(path, scenario) == run_bytes(gguf_path, scenario)


def test_separate_output_weight_is_used(gguf_path, scenario, tmp_path):
    path = rewrite_gguf(gguf_path, tmp_path / "out.gguf",
                        tensors_edit=lambda t: t.__setitem__("output.weight", 0.5 * t["token_embd.weight"]))
    assert run_bytes(path, scenario)[0] != run_bytes(gguf_path, scenario)[0]


def _one_kv_head(t):
    # Keep kv head 0 of every sliding layer (head_dim 16) so every layer has 1 kv head.
    for il in range(5):
        for w in ("attn_k", "attn_v"):
            t[f"blk.{il}.{w}.weight"] = np.ascontiguousarray(t[f"blk.{il}.{w}.weight"][:16])


def test_scalar_head_count_kv(gguf_path, scenario, tmp_path):
    """head_count_kv as a scalar reads like the array of the same value on every layer."""
    import gguf

    as_array = rewrite_gguf(gguf_path, tmp_path / "array_kv.gguf", tensors_edit=_one_kv_head, kv_edit=lambda f: (
        f.__setitem__("diffusion-gemma.attention.head_count_kv",
                      ([1] * 6, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32))))
    as_scalar = rewrite_gguf(gguf_path, tmp_path / "scalar_kv.gguf", tensors_edit=_one_kv_head, kv_edit=lambda f: (
        f.__setitem__("diffusion-gemma.attention.head_count_kv", (1, gguf.GGUFValueType.UINT32, None))))
    assert core().Model.load(str(as_scalar)).hparams["n_kv_head"] == [1] * 6
    assert run_bytes(as_scalar, scenario) == run_bytes(as_array, scenario)
    # The original weights with a scalar 2 everywhere: the full layer's attn_k no longer fits.
    wrong = rewrite_gguf(gguf_path, tmp_path / "wrong_kv.gguf", kv_edit=lambda f: f.__setitem__(
        "diffusion-gemma.attention.head_count_kv", (2, gguf.GGUFValueType.UINT32, None)))
    with pytest.raises(core().Error, match=r"blk\.5\.attn_k\.weight.*shape"):
        core().Model.load(str(wrong))


# --- bad files and bad inputs


def _load_error(path):
    with pytest.raises(core().Error) as info:
        core().Model.load(str(path), n_threads=1)
    return str(info.value)


def test_missing_tensor_is_named(gguf_path, tmp_path):
    path = rewrite_gguf(gguf_path, tmp_path / "missing.gguf",
                        tensors_edit=lambda t: t.pop("blk.3.attn_k_norm.weight"))
    assert "blk.3.attn_k_norm.weight" in _load_error(path) and "missing" in _load_error(path)


def test_missing_token_embd_is_named(gguf_path, tmp_path):
    path = rewrite_gguf(gguf_path, tmp_path / "noemb.gguf", tensors_edit=lambda t: t.pop("token_embd.weight"))
    assert "token_embd.weight" in _load_error(path)


def test_wrong_shape_is_named(gguf_path, tmp_path):
    def edit(t):
        t["blk.2.attn_q.weight"] = np.ascontiguousarray(t["blk.2.attn_q.weight"][:, :32])

    msg = _load_error(rewrite_gguf(gguf_path, tmp_path / "shape.gguf", tensors_edit=edit))
    assert "blk.2.attn_q.weight" in msg and "shape" in msg


def test_unsupported_weight_type_is_named(gguf_path, tmp_path):
    import gguf

    def edit(t):
        # ffn_gate [96 rows x 64]: valid IQ4_NL blocks (2 per row, 18 bytes each), a type the engine
        # does not read
        t["blk.1.ffn_gate.weight"] = (np.zeros((96, 36), np.uint8), gguf.GGMLQuantizationType.IQ4_NL)

    msg = _load_error(rewrite_gguf(gguf_path, tmp_path / "iq4.gguf", tensors_edit=edit))
    assert "blk.1.ffn_gate.weight" in msg and "IQ4_NL" in msg
    assert "Q8_0" in msg and "Q4_K" in msg  # the message says what is read


def test_wrong_architecture(gguf_path, tmp_path):
    msg = _load_error(rewrite_gguf(gguf_path, tmp_path / "arch.gguf", arch="llama"))
    assert "architecture" in msg and "llama" in msg


def test_missing_key_is_named(gguf_path, tmp_path):
    path = rewrite_gguf(gguf_path, tmp_path / "nokey.gguf",
                        kv_edit=lambda f: f.pop("diffusion-gemma.expert_used_count"))
    assert "expert_used_count" in _load_error(path)


def test_not_a_gguf(tmp_path):
    p = tmp_path / "junk.gguf"
    p.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(core().Error):
        core().Model.load(str(p))
    with pytest.raises(core().Error):
        core().Model.load(str(tmp_path / "absent.gguf"))


def test_bad_token_ids_and_shapes(gguf_path):
    c = core()
    ctx = c.Context(c.Model.load(str(gguf_path), n_threads=1), n_ctx=64)
    for bad in ([1, 2, 512], [-1], [2**40]):
        with pytest.raises(c.Error, match="out of range"):
            ctx.encode(bad)
        with pytest.raises(c.Error, match="out of range"):
            ctx.denoise(bad)
        with pytest.raises(c.Error, match="out of range"):
            ctx.commit(bad)
    assert ctx.n_past == 0
    with pytest.raises(c.Error, match="sc_logits"):
        ctx.denoise(list(range(16)), np.zeros((16, 511), np.float32))
    with pytest.raises(c.Error, match="one-dimensional"):
        ctx.encode(np.zeros((2, 2), np.int64))
    with pytest.raises(c.Error, match="canvas"):
        ctx.denoise([])
    with pytest.raises(c.Error, match="context is full"):
        ctx.encode(np.zeros(65, np.int64))
    ctx.encode(np.zeros(60, np.int64))
    with pytest.raises(c.Error, match="context is full"):
        ctx.commit(np.zeros(16, np.int64))
    assert ctx.n_past == 60
