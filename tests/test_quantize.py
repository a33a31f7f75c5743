"""diffgemma-quantize / diffgemma.quantize: per-tensor type rules, the rewritten file, the tool.

- The Q4_K_M plan for a stand-in with the real DiffusionGemma tensor names, layer count and row
  widths (ne0 = 2816 / 2112 / 704 / 4096 / 8192, few rows) reproduces the unsloth file's type
  counts (gguf-layout.md §4.3): 423 F32, 194 Q4_K, 14 Q6_K, 33 Q5_0, 28 Q8_0.
- Every mix of a converted tiny checkpoint is read back by gguf-py: metadata copied, file type
  set, each tensor's bytes equal to our block quantizer on the source rows, values close to the
  source, NVFP4 second-level scales present (and folded into ffn_down_exps.scale), output
  identical for 1 and 2 threads.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T, GGUFReader, GGUFWriter, LlamaFileType

import diffgemma
from diffgemma import _core
from diffgemma.quantizer import TYPES, quantization_plan

SWA_PATTERN = [i % 6 != 5 for i in range(30)]  # layers 5, 11, 17, 23, 29 are full attention


def real_layout() -> list[tuple[str, tuple[int, ...]]]:
    """(name, ggml ne) of every tensor of the real model (gguf-layout.md §2.1) with the real
    ne0 but 2 rows (and 2 experts), so the file stays small."""
    H, F, I, E = 2816, 2112, 704, 2
    out = [
        ("output_norm.weight", (H,)), ("rope_freqs.weight", (256,)), ("self_cond_down.weight", (F, 2)),
        ("self_cond_gate.weight", (H, 2)), ("self_cond_pre_norm.weight", (H,)), ("self_cond_up.weight", (H, 2)),
        ("token_embd.weight", (H, 4)),
    ]
    for i, swa in enumerate(SWA_PATTERN):
        hd = 256 if swa else 512
        q = 16 * hd
        layer = [
            ("attn_norm.weight", (H,)), ("attn_q.weight", (H, 2)), ("attn_k.weight", (H, 2)),
            *([("attn_v.weight", (H, 2))] if swa else []),
            ("attn_output.weight", (q, 2)), ("attn_q_norm.weight", (hd,)), ("attn_k_norm.weight", (hd,)),
            ("post_attention_norm.weight", (H,)), ("ffn_norm.weight", (H,)), ("ffn_gate.weight", (H, 2)),
            ("ffn_up.weight", (H, 2)), ("ffn_down.weight", (F, 2)), ("post_ffw_norm_1.weight", (H,)),
            ("pre_ffw_norm_2.weight", (H,)), ("ffn_gate_inp.weight", (H, 2)), ("ffn_gate_inp.scale", (H,)),
            ("ffn_gate_up_exps.weight", (H, 4, E)), ("ffn_down_exps.weight", (I, 2, E)),
            ("ffn_down_exps.scale", (E,)), ("post_ffw_norm_2.weight", (H,)), ("post_ffw_norm.weight", (H,)),
            ("layer_output_scale.weight", (1,)), ("enc_layer_output_scale.weight", (1,)),
        ]
        out += sorted((f"blk.{i}.{n}", ne) for n, ne in layer)
    return out


@pytest.fixture(scope="module")
def real_shaped_gguf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("real_shapes") / "stand-in.gguf"
    w = GGUFWriter(path, "diffusion-gemma")
    w.add_block_count(30)
    w.add_expert_count(128)
    w.add_file_type(LlamaFileType.ALL_F32)
    rng = np.random.default_rng(0)
    for name, ne in real_layout():
        w.add_tensor(name, (rng.standard_normal(tuple(reversed(ne))) * 0.02 + 0.01).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_real_shapes_q4_k_m_plan_counts(real_shaped_gguf):
    plan = quantization_plan(real_shaped_gguf, "Q4_K_M")
    assert len(plan) == 692
    assert Counter(t for _, t in plan) == {"F32": 423, "Q4_K": 194, "Q6_K": 14, "Q5_0": 33, "Q8_0": 28}
    types = dict(plan)
    bumped = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29}  # use_more_bits(i, 30)
    for i in range(30):
        expect = "Q8_0" if i in bumped else "Q5_0"  # Q6_K / Q4_K, fallen back for ne0 2112 / 704
        assert types[f"blk.{i}.ffn_down.weight"] == expect and types[f"blk.{i}.ffn_down_exps.weight"] == expect
    v_types = [types[f"blk.{i}.attn_v.weight"] for i in range(30) if SWA_PATTERN[i]]
    assert [j for j, t in enumerate(v_types) if t == "Q6_K"] == [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23, 24]
    assert types["token_embd.weight"] == "Q6_K" and types["self_cond_down.weight"] == "Q5_0"
    assert types["blk.0.ffn_gate_inp.weight"] == "F32" and types["blk.0.ffn_down_exps.scale"] == "F32"


@pytest.mark.parametrize(
    "mix, expect",
    [
        ("Q8_0", {"F32": 423, "Q8_0": 269}),
        ("Q6_K", {"F32": 423, "Q6_K": 208, "Q8_0": 61}),  # 30 ffn_down, 30 ffn_down_exps, self_cond_down
        ("Q5_K_M", {"F32": 423, "Q5_K": 194, "Q6_K": 14, "Q5_1": 33, "Q8_0": 28}),
        ("Q5_0", {"F32": 423, "Q5_0": 268, "Q6_K": 1}),
        # NVFP4: every matrix, token_embd Q6_K (the tied LM head rule); a new .scale per NVFP4
        # matrix (25 x 8 + 5 x 7 + 3) except ffn_down_exps, whose own .scale takes the folded scales.
        ("NVFP4", {"F32": 423 + 25 * 8 + 5 * 7 + 3, "NVFP4": 268, "Q6_K": 1}),
    ],
)
def test_real_shapes_other_mixes(real_shaped_gguf, mix, expect):
    assert Counter(t for _, t in quantization_plan(real_shaped_gguf, mix)) == expect


def test_real_shapes_nvfp4_file(real_shaped_gguf, tmp_path):
    out = tmp_path / "nvfp4.gguf"
    diffgemma.quantize(real_shaped_gguf, out, "NVFP4", threads=2)
    src = {t.name: t for t in GGUFReader(real_shaped_gguf).tensors}
    got = {t.name: t for t in GGUFReader(out).tensors}
    w = src["blk.3.ffn_down_exps.weight"].data.astype(np.float32)  # [E, rows, 704]
    s2 = np.abs(w).reshape(2, -1).max(axis=1) / np.float32(2688)
    np.testing.assert_array_equal(got["blk.3.ffn_down_exps.scale"].data, src["blk.3.ffn_down_exps.scale"].data * s2)
    for name in ("blk.3.attn_q", "blk.3.ffn_gate_up_exps"):
        scale = got[f"{name}.scale"].data
        weight = src[f"{name}.weight"].data.astype(np.float32)
        groups = weight.reshape(scale.size, -1)
        np.testing.assert_array_equal(scale, np.abs(groups).max(axis=1) / np.float32(2688))
        deq = _core.dequantize(int(T.NVFP4), got[f"{name}.weight"].data, weight.size).reshape(scale.size, -1)
        rel = np.sqrt(np.mean((deq * scale[:, None] - groups) ** 2) / np.mean(groups**2))
        assert rel < 0.12, (name, rel)


def test_plan_reproduces_a_real_llama_cpp_q4_k_m_file(gemma3_gguf, tmp_path):
    """llama-quantize's own Q4_K_M of gemma-3-270m (ne0 640 and 2048: fallbacks, the attn_v and
    ffn_down bumps of a dense model): our rules give every tensor the type llama.cpp gave it."""
    theirs = [(t.name, t.tensor_type.name) for t in GGUFReader(gemma3_gguf).tensors]
    assert quantization_plan(gemma3_gguf, "Q4_K_M") == theirs
    assert Counter(t for _, t in theirs) == {"F32": 109, "Q5_0": 81, "Q4_K": 27, "Q8_0": 10, "Q6_K": 9}
    # Same types in and out: the tool copies every tensor bit for bit.
    out = tmp_path / "same.gguf"
    diffgemma.quantize(gemma3_gguf, out, "Q4_K_M")
    for a, b in zip(GGUFReader(gemma3_gguf).tensors, GGUFReader(out).tensors):
        assert a.name == b.name and np.array_equal(np.asarray(a.data), np.asarray(b.data))


# ---- end to end on a converted tiny checkpoint -------------------------------------------------

# Bound on the relative RMS error of each type on the tiny model's N(0, 0.02)-like weights.
REL_BOUND = {T.F32: 0, T.F16: 1e-3, T.Q8_0: 0.01, T.Q6_K: 0.03, T.Q5_K: 0.05, T.Q5_1: 0.05, T.Q5_0: 0.06,
             T.Q4_K: 0.10, T.NVFP4: 0.12}


@pytest.fixture(scope="module")
def wide_gguf(tiny_checkpoint, tmp_path_factory) -> Path:
    """A tiny checkpoint whose hidden size (256) fits K-quant super-blocks, converted to F32."""
    from diffgemma.convert import ConvertOptions, convert
    from fixtures.models import TinySpec

    spec = TinySpec("tiny_wide", hidden_size=256, intermediate_size=192, moe_intermediate_size=64, seed=3)
    path = tmp_path_factory.mktemp("wide") / "wide-f32.gguf"
    convert(ConvertOptions(tiny_checkpoint(spec), path, outtype="f32", name="tiny_wide", progress=False))
    return path


def _quantize_cli(src: Path, out: Path, mix: str, threads: int) -> subprocess.CompletedProcess:
    exe = shutil.which("diffgemma-quantize")
    assert exe, "diffgemma-quantize is not on PATH: install the package (pip install .)"
    return subprocess.run([exe, str(src), str(out), mix, "--threads", str(threads)], capture_output=True, text=True)


@pytest.mark.parametrize("mix", TYPES)
def test_tiny_model_every_mix(wide_gguf, tmp_path, mix):
    out1, out2 = tmp_path / "t1.gguf", tmp_path / "t2.gguf"
    r = _quantize_cli(wide_gguf, out1, mix, 1)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("wrote ") and lines[0].startswith("[   1/")
    diffgemma.quantize(wide_gguf, out2, mix, threads=2)
    assert out1.read_bytes() == out2.read_bytes()  # independent of the thread count

    src, dst = GGUFReader(wide_gguf), GGUFReader(out1)
    src_kv = {f.name: f.contents() for f in src.fields.values() if not f.name.startswith("GGUF.")}
    dst_kv = {f.name: f.contents() for f in dst.fields.values() if not f.name.startswith("GGUF.")}
    assert dst_kv.pop("general.file_type") == {
        "Q8_0": 7, "Q6_K": 18, "Q5_K_M": 17, "Q4_K_M": 15, "Q5_0": 8, "NVFP4": 39}[mix]
    assert dst_kv.pop("general.quantization_version") == 2
    src_kv.pop("general.file_type")
    src_kv.pop("general.quantization_version", None)
    assert dst_kv == src_kv

    source = {t.name: t.data.astype(np.float32) for t in src.tensors}
    plan = dict(quantization_plan(wide_gguf, mix))
    seen = Counter()
    for t in dst.tensors:
        assert t.tensor_type.name == plan[t.name]
        seen[t.tensor_type.name] += 1
        if t.name not in source:  # a new NVFP4 second-level scale
            assert mix == "NVFP4" and t.name.endswith(".scale")
            continue
        x = source[t.name].reshape(-1)
        if t.tensor_type == T.F32:
            if mix == "NVFP4" and t.name.endswith("ffn_down_exps.scale"):
                continue  # folded: checked in test_real_shapes_nvfp4_file
            np.testing.assert_array_equal(t.data.reshape(-1), x)
            continue
        block, size = GGML_QUANT_SIZES[t.tensor_type]
        raw = np.ascontiguousarray(t.data).view(np.uint8).reshape(-1)
        deq = _core.dequantize(int(t.tensor_type), raw, x.size)
        if t.tensor_type == T.NVFP4:
            scale_name = t.name[: -len("weight")] + "scale"
            scale = {u.name: u for u in dst.tensors}[scale_name].data
            if scale_name in source:  # ffn_down_exps.scale = router per-expert scale x s2 (folded)
                scale = scale / source[scale_name]
            deq = (deq.reshape(scale.size, -1) * scale[:, None]).reshape(-1)
            expect = np.concatenate([
                _core.quantize(int(T.NVFP4), g, float(s)) for g, s in zip(x.reshape(scale.size, -1), scale)
            ]) if not t.name.endswith("ffn_down_exps.weight") else None
        else:
            expect = _core.quantize(int(t.tensor_type), x)
        if expect is not None:
            np.testing.assert_array_equal(raw, expect)  # the tool writes exactly the block quantizer's bytes
        rel = np.sqrt(np.mean((deq - x).astype(np.float64) ** 2) / np.mean(x.astype(np.float64) ** 2))
        assert rel <= REL_BOUND[t.tensor_type], (t.name, t.tensor_type.name, rel)
    print(mix, dict(seen))
    assert sum(seen[k] for k in seen if k != "F32") > 0


def test_tool_errors(wide_gguf, tmp_path):
    exe = shutil.which("diffgemma-quantize")
    bad = subprocess.run([exe, str(wide_gguf), str(tmp_path / "o.gguf"), "Q3_K_S"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown type 'Q3_K_S'" in bad.stderr and len(bad.stderr.splitlines()) == 1
    bad = subprocess.run([exe, str(tmp_path / "missing.gguf"), str(tmp_path / "o.gguf"), "Q8_0"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("diffgemma-quantize: error:")
    assert len(bad.stderr.splitlines()) == 1
    bad = subprocess.run([exe, str(wide_gguf), str(tmp_path / "o.gguf"), "Q8_0", "--threads", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--threads" in bad.stderr
    bad = subprocess.run([exe, str(wide_gguf), str(tmp_path / "no-such-dir" / "o.gguf"), "Q8_0"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "cannot write" in bad.stderr
    assert not list(tmp_path.glob(".*part"))
    nan_file = tmp_path / "nan.gguf"
    w = GGUFWriter(nan_file, "diffusion-gemma")
    bad_rows = np.zeros((3, 64), dtype=np.float32)
    bad_rows[2, 5] = np.nan
    w.add_tensor("blk.0.attn_q.weight", bad_rows)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    bad = subprocess.run([exe, str(nan_file), str(tmp_path / "o.gguf"), "Q8_0"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr == "diffgemma-quantize: error: tensor blk.0.attn_q.weight holds a non-finite value in row 2\n"
    with pytest.raises(diffgemma.Error, match="unknown type"):
        diffgemma.quantize(wide_gguf, tmp_path / "o.gguf", "Q2_K")
