"""The generation loop on its own: determinism across runs and thread counts, exact -n, GGUF
defaults, EOS handling, bad parameters, cancellation from a callback."""

from __future__ import annotations

import numpy as np
import pytest

PROMPT = np.array([2, 105, 7, 300, 41, 9, 77, 12, 301, 5, 99, 64], dtype=np.int64)


@pytest.fixture(scope="module")
def gguf(tiny_gguf):
    return tiny_gguf("tiny", "f32")


@pytest.fixture(scope="module")
def model(gguf):
    from diffgemma import _core

    return _core.Model.load(str(gguf), 2)


def run(model, **kw):
    from diffgemma import _core

    ctx = _core.Context(model, n_ctx=kw.pop("n_ctx", 512))
    kw.setdefault("max_denoising_steps", 6)
    return _core.generate(ctx, kw.pop("prompt", PROMPT), **kw)


def test_same_seed_same_tokens_across_runs_and_thread_counts(gguf):
    from diffgemma import _core

    outs = []
    for n_threads in (1, 2, 3, 2):
        m = _core.Model.load(str(gguf), n_threads)
        r = run(m, max_new_tokens=40, seed=1234, eos_token_id=[])
        outs.append((r["tokens"].tobytes(), r["canvases"].tobytes(), r["stats"]["denoising_steps"]))
    assert all(o == outs[0] for o in outs)
    other = run(_core.Model.load(str(gguf), 2), max_new_tokens=40, seed=1235, eos_token_id=[])
    assert other["tokens"].tobytes() != outs[0][0]


@pytest.mark.parametrize("n", [1, 5, 15, 16, 17, 33])
def test_max_new_tokens_is_exact_without_eos(model, n):
    r = run(model, max_new_tokens=n, seed=3, eos_token_id=[])
    assert len(r["tokens"]) == n
    assert r["stats"]["canvases"] == -(-n // 16)
    assert len(r["canvases"]) == 16 * r["stats"]["canvases"]
    assert np.array_equal(r["tokens"], r["canvases"][:n]) and r["stop_reason"] == "length"


@pytest.mark.parametrize("seed", range(6))
def test_never_more_than_n_with_eos(model, seed):
    for n in (3, 20):
        r = run(model, max_new_tokens=n, seed=seed)
        assert len(r["tokens"]) <= n
        assert r["stats"]["generated_tokens"] == len(r["tokens"])


def test_defaults_come_from_the_gguf(model, gguf, tmp_path):
    from diffgemma import _core
    from forward_support import rewrite_gguf

    d = _core.diffusion_defaults(model)
    assert d["max_denoising_steps"] == 48 and d["stability_threshold"] == 1
    assert d["t_min"] == pytest.approx(0.4) and d["t_max"] == pytest.approx(0.8)
    assert d["entropy_bound"] == pytest.approx(0.1) and d["confidence_threshold"] == pytest.approx(0.005)
    assert d["eos_token_id"] == [1, 50, 106] and d["pad_token_id"] == 0

    import gguf as gg

    def edit(fields):
        for key in [k for k in fields if k.startswith("diffusion.eb_")]:
            del fields[key]
        fields["diffusion.eb_max_steps"] = (3, gg.GGUFValueType.UINT32, None)
        fields["diffusion.eb_t_max"] = (0.9, gg.GGUFValueType.FLOAT32, None)

    path = rewrite_gguf(gguf, tmp_path / "eb.gguf", kv_edit=edit)
    m = _core.Model.load(str(path), 2)
    d = _core.diffusion_defaults(m)
    assert d["max_denoising_steps"] == 3 and d["t_max"] == pytest.approx(0.9)
    assert d["t_min"] == pytest.approx(0.4)  # absent key: transformers' default
    ctx = _core.Context(m, n_ctx=512)
    r = _core.generate(ctx, PROMPT, max_new_tokens=32, seed=0, eos_token_id=[])
    assert r["stats"]["denoising_steps"] == 6  # 2 canvases x 3 steps (stability never met)


def test_eos_stops_and_pads(model):
    probe = run(model, max_new_tokens=48, seed=11, eos_token_id=[])
    seq = probe["canvases"].tolist()
    eos = seq[20]
    k = seq.index(eos)
    r = run(model, max_new_tokens=48, seed=11, eos_token_id=[eos], pad_token_id=0)
    assert r["stop_reason"] == "eos" and r["eos_token"] == eos
    assert r["tokens"].tolist() == seq[:k]
    c0 = (k // 16) * 16
    assert r["canvases"].tolist() == seq[:k + 1] + [0] * (c0 + 16 - k - 1)
    assert r["pending_tokens"].tolist() == seq[c0:k + 1]
    # an int works as well as a list
    assert run(model, max_new_tokens=48, seed=11, eos_token_id=eos)["tokens"].tolist() == seq[:k]


def test_tokens_per_forward_counts_non_pad_over_passes(model):
    r = run(model, max_new_tokens=32, seed=5, eos_token_id=[], max_denoising_steps=4)
    assert r["stats"]["denoising_steps"] == 8
    assert r["stats"]["tokens_per_forward"] == pytest.approx(np.count_nonzero(r["canvases"] != 0) / 8)


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(max_denoising_steps=0), "max_denoising_steps"),
        (dict(t_min=0.9, t_max=0.5), "t_max must be >= t_min"),
        (dict(entropy_bound=0.0), "entropy_bound"),
        (dict(stability_threshold=-1), "stability_threshold"),
        (dict(confidence_threshold=0.0), "confidence_threshold"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(eos_token_id=[100000]), "out of range"),
        (dict(decoder_input_ids=[1, 2, 3]), "canvas length"),
        (dict(prompt=np.array([], dtype=np.int64)), "empty"),
        (dict(max_new_tokens=10000, n_ctx=64), "context too small"),
    ],
)
def test_bad_parameters_raise(model, kw, msg):
    from diffgemma import Error

    with pytest.raises(Error, match=msg):
        run(model, **{"max_new_tokens": 16, **kw})


def test_constant_temperature_is_allowed(model):
    r = run(model, max_new_tokens=16, seed=1, t_min=0.7, t_max=0.7, eos_token_id=[])
    assert len(r["tokens"]) == 16


def test_callback_exception_cancels_cleanly(model):
    from diffgemma import _core

    ctx = _core.Context(model, n_ctx=512)
    seen = []

    def cb(ev):
        seen.append(ev["type"])
        if ev["type"] == "commit":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _core.generate(ctx, PROMPT, max_new_tokens=64, seed=0, eos_token_id=[], max_denoising_steps=3, callback=cb)
    # stopped after the first canvas: its commit pass ran, no further decoder pass did
    assert seen.count("commit") == 1 and seen.count("draft") == 3
    assert ctx.n_past == len(PROMPT) + 16
    # the context is still usable
    r = _core.generate(ctx, [7, 8], max_new_tokens=16, seed=0, eos_token_id=[], max_denoising_steps=2)
    assert len(r["tokens"]) == 16


def test_events_order_and_contents(model):
    from diffgemma import _core

    ctx = _core.Context(model, n_ctx=512)
    events = []
    r = _core.generate(ctx, PROMPT, max_new_tokens=20, seed=2, eos_token_id=[], max_denoising_steps=3,
                       callback=events.append)
    kinds = [e["type"] for e in events]
    assert kinds == ["draft"] * 3 + ["commit"] + ["draft"] * 3 + ["commit", "done"]
    d = events[0]
    assert d["argmax"].shape == (16,) and d["accepted"].dtype == np.bool_ and d["n_accepted"] == d["accepted"].sum()
    assert d["temperature"] == pytest.approx(0.8)
    assert events[3]["n_valid"] == 16 and events[7]["n_valid"] == 4
    assert np.array_equal(np.concatenate([events[3]["tokens"], events[7]["tokens"]])[:20], r["tokens"])
    assert events[-1]["stats"]["canvases"] == 2
    first = events[3]["stats"]  # statistics so far, at the first commit
    assert first["canvases"] == 1 and first["denoising_steps"] == 3 and first["generated_tokens"] == 16
    assert first["tokens_per_forward"] == pytest.approx(np.count_nonzero(events[3]["tokens"] != 0) / 3)
