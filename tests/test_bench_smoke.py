"""diffgemma-bench and the synthetic-model tool (issue 7) on a tiny synthetic model: the tools run
and produce every figure (prefill, each phase of a denoising step, commit, peaks); times are not
checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from diffgemma.synth import real_hparams, synth_tensors, write_synth


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "small-q8_0.gguf"
    write_synth(path, n_layer=6, outtype="q8_0", small=True)
    return path


@pytest.fixture(scope="module")
def bench():
    exe = shutil.which("diffgemma-bench")
    assert exe, "diffgemma-bench is not on PATH: install the package (pip install .)"
    return exe


def test_real_shapes_match_the_checkpoint():
    hp = real_hparams(30)
    assert (hp.n_embd, hp.n_ff, hp.n_ff_exp, hp.n_expert, hp.n_expert_used) == (2816, 2112, 704, 128, 8)
    assert (hp.n_head, hp.head_dim_swa, hp.head_dim_full, hp.vocab_size) == (16, 256, 512, 262144)
    assert (hp.sliding_window, hp.canvas_length) == (1024, 256)
    assert [i for i, s in enumerate(hp.is_swa) if not s] == [5, 11, 17, 23, 29]
    assert hp.n_head_kv == tuple(8 if s else 2 for s in hp.is_swa)
    names = {t.name: t for t in synth_tensors(hp, "q8_0")}
    assert len(names) == 692  # the unsloth files' tensor count (gguf-layout.md §2.1)
    assert names["blk.0.ffn_gate_up_exps.weight"].shape == (128, 1408, 2816)
    assert names["blk.0.ffn_down_exps.weight"].shape == (128, 2816, 704)
    assert names["blk.5.attn_q.weight"].shape == (8192, 2816) and "blk.5.attn_v.weight" not in names
    assert names["token_embd.weight"].shape == (262144, 2816)


def test_synth_file_loads_and_runs(small_model):
    import numpy as np

    from diffgemma import _core

    model = _core.Model.load(str(small_model), n_threads=2)
    assert model.n_layer == 6
    ctx = _core.Context(model, n_ctx=64)
    ctx.encode(np.arange(5, 20, dtype=np.int32))
    logits = ctx.denoise(np.arange(16, dtype=np.int32))
    assert logits.shape == (16, 512) and np.isfinite(logits).all()


def test_synth_cli_is_deterministic(tmp_path):
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    for out in (a, b):
        r = subprocess.run([sys.executable, "-m", "diffgemma.synth", "--small", "--layers", "1", "--outtype", "bf16",
                            "--outfile", str(out), "--quiet"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    r = subprocess.run([sys.executable, "-m", "diffgemma.synth", "--small", "--outfile", str(a)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "exists" in r.stderr


def test_bench_json(small_model, bench):
    r = subprocess.run([bench, "-m", str(small_model), "-t", "2", "--runs", "1", "--warmup", "0",
                        "--prefix", "8", "--prompt-lengths", "8,32", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["layers"] == 6 and out["threads"] == 2 and out["canvas"] == 16
    assert out["kernels"] in ("fast", "exact", "reference")
    assert [p["tokens"] for p in out["prefill"]] == [8, 32]
    assert all(p["tokens_per_s"] > 0 for p in out["prefill"])
    phases = out["step"]["phases"]
    for name in ("self_cond_probs", "self_cond_soft_embed", "self_cond_mlp", "attn_proj", "attn_core", "dense_mlp", "moe_router",
                 "moe_experts", "lm_head", "vocab_softmax_entropy_sample"):
        assert phases[name]["ms"] >= 0, name
    for name in ("attn_proj", "dense_mlp", "moe_experts", "lm_head"):
        assert phases[name]["gflop"] > 0 and phases[name]["per_layer"] == (name not in ("lm_head",))
    # the experts' split: with fast kernels the int8 GEMMs are timed, and lie within the phase
    split = out["step"]["moe_experts_split"]
    if out["kernels"] == "fast":
        assert split["gemm_ms"] > 0 and split["gemm_gflops"] > 0
        assert split["gemm_ms"] + split["gelu_requant_ms"] <= phases["moe_experts"]["ms"] * 1.01 + 0.01
    step = out["step"]
    assert step["total_ms"] > 0 and step["per_layer_ms"] > 0 and step["extrapolated_30_layers_ms"] > 0
    assert out["commit_ms"] > 0
    assert set(out["peaks_gflops"]) == {"isa", "fp32_fma", "fp64_fma", "int8_dot", "bf16_dot"}
    # the whole file is mapped and the engine's buffers come on top
    assert out["peak_rss_bytes"] > 0 and out["file_bytes"] == small_model.stat().st_size
    assert out["load_ms"] >= 0 and out["packed_bytes"] >= 0


def test_bench_table_and_errors(small_model, bench):
    r = subprocess.run([bench, "-m", str(small_model), "-t", "1", "--runs", "1", "--warmup", "0", "--no-peaks",
                        "--prompt-lengths", "0", "--kernels", "reference"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for word in ("denoising step", "moe_experts", "lm_head", "per layer", "commit pass", "kernels reference",
                 "peak RSS", "packed for the int8 kernels"):
        assert word in r.stdout, word
    r = subprocess.run([bench, "-m", str(small_model) + ".missing"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("error: ")
    r = subprocess.run([bench, "--kernels", "nope", "-m", str(small_model)], capture_output=True, text=True)
    assert r.returncode == 2
