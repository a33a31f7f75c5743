"""NVFP4 checkpoint import: a ModelOpt NVFP4 checkpoint -> our converter -> GGUF NVFP4 blocks.

Two checkpoints of a tiny fixture (hidden 256, expert width 64), both made by `nvidia-modelopt`
on CPU (tests skip without it; the test extra needs `nvidia-modelopt==0.47.0`):
- `modelopt_export`: ModelOpt's own pipeline, `mtq.quantize(NVFP4_EXPERTS_ONLY_CFG)` then
  `export_hf_checkpoint` (per-expert gate/up/down `weight` U8, `weight_scale` F8_E4M3,
  `weight_scale_2`, `input_scale`, nvfp4.md §2), as the released checkpoint was made;
- `nvfp4_checkpoint`: experts quantized tensor by tensor with NVFP4QTensor.quantize and written in
  that layout by hand, with one layer's gate and up given different second-level scales, so the
  unfused path is covered too.

The oracle is ModelOpt's own dequantization. GGML keeps the second-level scale out of the blocks,
so the comparison is exact on both factors: the GGUF block values (decoded by gguf-py) equal
ModelOpt's dequantization with double_scale = 1 bit for bit, and the `.scale` tensors equal
`weight_scale_2` bit for bit. The full product is then one fp32 multiplication in either order;
ModelOpt multiplies E4M3 x s2 first, so the two products may differ in the last bit (asserted
<= 1 ulp, and the share that is bit-identical printed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T, GGUFReader, quants

from diffgemma.convert import ConvertOptions, convert
from diffgemma.convert.errors import ConvertError
from diffgemma.convert.nvfp4 import pack_ggml_nvfp4

torch = pytest.importorskip("torch")

E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)


def modelopt_layout_decode(packed: np.ndarray, scale_bytes: np.ndarray) -> np.ndarray:
    """E2M1 x E4M3 of ModelOpt's layout, from the spec (element 2i low nibble, 2i+1 high)."""
    codes = np.empty((packed.shape[0], packed.shape[1] * 2), dtype=np.uint8)
    codes[:, 0::2], codes[:, 1::2] = packed & 15, packed >> 4
    scale = torch.from_numpy(scale_bytes.copy()).view(torch.float8_e4m3fn).float().numpy()
    return E2M1[codes] * np.repeat(scale, 16, axis=1)


def test_pack_is_lossless_and_validates():
    rng = np.random.default_rng(0)
    packed = rng.integers(0, 256, size=(6, 64), dtype=np.uint8)  # K = 128
    scales = rng.integers(1, 0x7F, size=(6, 8), dtype=np.uint8)
    scales[0, 0] |= 0x80  # a negative scale: kept exactly by flipping the codes' signs
    want = modelopt_layout_decode(packed, scales)
    blocks = pack_ggml_nvfp4(packed, scales, "t")
    assert blocks.shape == (6, 2 * 36) and not (blocks.reshape(-1, 36)[:, :4] & 0x80).any()
    got = quants.dequantize(blocks, T.NVFP4)
    np.testing.assert_array_equal(np.abs(got), np.abs(want))
    np.testing.assert_array_equal(got[want != 0], want[want != 0])  # signs too (zeros may be -0)
    bad = scales.copy()
    bad[1, 1] = 0x7F
    with pytest.raises(ConvertError, match="NaN"):
        pack_ggml_nvfp4(packed, bad, "t")
    with pytest.raises(ConvertError, match="64-value"):
        pack_ggml_nvfp4(packed[:, :40], scales[:, :5], "t")


# ---- ModelOpt as the oracle ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def modelopt_nvfp4():
    return pytest.importorskip("modelopt.torch.quantization.qtensor.nvfp4_tensor").NVFP4QTensor


SPLIT_LAYER = 1  # gate and up quantized with different second-level scales: kept apart in the GGUF


@pytest.fixture(scope="module")
def nvfp4_checkpoint(tiny_checkpoint, modelopt_nvfp4, tmp_path_factory):
    """(directory, {(layer, expert, proj): (NVFP4QTensor, scale, s2)}, per_expert_scale by layer)."""
    from safetensors.torch import load_file, save_file

    from fixtures.models import TinySpec

    src = tiny_checkpoint(TinySpec("tiny_wide", hidden_size=256, intermediate_size=192, moe_intermediate_size=64, seed=3))
    out = tmp_path_factory.mktemp("nvfp4") / "ckpt"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("*.safetensors", "*.safetensors.index.json"))
    tensors = {}
    for f in sorted(Path(src).glob("*.safetensors")):
        tensors.update(load_file(f))
    quantized, per_expert = {}, {}
    n_layer = json.loads((Path(src) / "config.json").read_text())["text_config"]["num_hidden_layers"]
    for layer in range(n_layer):
        base = f"model.decoder.layers.{layer}."
        gate_up = tensors.pop(base + "experts.gate_up_proj").float()  # [E, 2I, H]
        down = tensors.pop(base + "experts.down_proj").float()  # [E, H, I]
        per_expert[layer] = tensors[base + "router.per_expert_scale"].float().numpy()
        n_i = gate_up.shape[1] // 2
        for e in range(gate_up.shape[0]):
            shared = modelopt_nvfp4.get_weights_scaling_factor_2(gate_up[e])  # one amax for gate+up
            parts = {"gate_proj": gate_up[e, :n_i], "up_proj": gate_up[e, n_i:], "down_proj": down[e]}
            for proj, w in parts.items():
                s2 = None if proj == "down_proj" or layer == SPLIT_LAYER else shared
                q, scale, s2 = modelopt_nvfp4.quantize(w.contiguous(), 16, weights_scaling_factor_2=s2)
                quantized[(layer, e, proj)] = (q, scale, s2.float())
                name = f"{base}experts.{e}.{proj}."
                tensors[name + "weight"] = q._quantized_data.clone()
                tensors[name + "weight_scale"] = scale.clone()
                tensors[name + "weight_scale_2"] = s2.float().reshape(()).clone()
                tensors[name + "input_scale"] = torch.tensor(0.0125 if proj != "down_proj" else 0.5)
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((out / "config.json").read_text())
    config["quantization_config"] = {
        "quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16, "producer": {"name": "modelopt"},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "hf_quant_config.json").write_text(json.dumps({
        "producer": {"name": "modelopt"},
        "quantization": {"quant_algo": "NVFP4", "group_size": 16, "exclude_modules": ["lm_head", "*self_attn*"]},
    }))
    return out, quantized, per_expert, n_layer


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ia, ib = a.view(np.int32).astype(np.int64), b.view(np.int32).astype(np.int64)
    return np.abs(ia - ib)


def test_modelopt_round_trip(nvfp4_checkpoint, tmp_path):
    ckpt, quantized, per_expert, n_layer = nvfp4_checkpoint
    out = tmp_path / "nvfp4.gguf"
    convert(ConvertOptions(ckpt, out, outtype="f32", progress=False))
    tensors = {t.name: t for t in GGUFReader(out).tensors}
    n_expert = 1 + max(e for _, e, _ in quantized)
    exact = total = 0
    for layer in range(n_layer):
        blk = f"blk.{layer}."
        fused = layer != SPLIT_LAYER
        assert (blk + "ffn_gate_up_exps.weight" in tensors) == fused
        assert (blk + "ffn_gate_exps.weight" in tensors) != fused
        groups = {"ffn_gate_up_exps": ["gate_proj", "up_proj"]} if fused else {
            "ffn_gate_exps": ["gate_proj"], "ffn_up_exps": ["up_proj"]}
        groups["ffn_down_exps"] = ["down_proj"]
        for gguf_name, projs in groups.items():
            w = tensors[blk + gguf_name + ".weight"]
            assert w.tensor_type == T.NVFP4
            blocks = quants.dequantize(w.data, T.NVFP4)  # [E, rows, K]
            scale = tensors[blk + gguf_name + ".scale"].data
            input_scale = tensors[blk + gguf_name + ".input_scale"].data
            assert input_scale.shape == (n_expert,)
            for e in range(n_expert):
                rows = 0
                for proj in projs:
                    q, s, s2 = quantized[(layer, e, proj)]
                    # factor 1: the blocks are ModelOpt's E2M1 x E4M3, bit for bit
                    mo_blocks = q.dequantize(dtype=torch.float32, scale=s, double_scale=torch.tensor(1.0),
                                             block_sizes={-1: 16}).numpy()
                    ours = blocks[e, rows : rows + mo_blocks.shape[0]]
                    rows += mo_blocks.shape[0]
                    np.testing.assert_array_equal(ours.view(np.uint32), mo_blocks.view(np.uint32))
                    # factor 2: the second-level scale (down: times the router's per-expert scale)
                    s2 = np.float32(s2.item())
                    want = s2 if proj != "down_proj" else np.float32(per_expert[layer][e]) * s2
                    assert scale[e].view(np.uint32) == want.view(np.uint32)
                    if proj == "down_proj":
                        continue
                    # the product: one fp32 rounding either way round
                    mo = q.dequantize(dtype=torch.float32, scale=s, double_scale=torch.tensor(s2),
                                      block_sizes={-1: 16}).numpy()
                    full = ours * scale[e]
                    assert _ulps(full, mo).max() <= 1
                    exact += int((full.view(np.uint32) == mo.view(np.uint32)).sum())
                    total += full.size
                assert rows == blocks.shape[1]
    print(f"NVFP4 import: {exact}/{total} dequantized values bit-identical to ModelOpt's, the rest 1 ulp")
    assert exact > 0.5 * total
    # nothing of the experts is left behind under another name
    assert not any("experts" in n or "input_scale" in n and "exps" not in n for n in tensors)


# ---- the checkpoint made by ModelOpt's own pipeline: mtq.quantize + export_hf_checkpoint ----------


@pytest.fixture(scope="module")
def modelopt_export(tiny_checkpoint, modelopt_nvfp4, tmp_path_factory):
    """The tiny wide model quantized with NVFP4_EXPERTS_ONLY_CFG (the preset of the released
    checkpoint, nvfp4.md §2.3) and exported by ModelOpt on CPU, plus our fixture's tokenizer."""
    import modelopt.torch.quantization as mtq
    from modelopt.torch.export import export_hf_checkpoint

    from fixtures.models import TinySpec, build_model

    spec = TinySpec("tiny_wide", hidden_size=256, intermediate_size=192, moe_intermediate_size=64, seed=3)
    src = tiny_checkpoint(spec)
    model = build_model(spec)
    model.config.architectures = ["DiffusionGemmaForBlockDiffusion"]  # the export reads it
    ids = torch.randint(0, spec.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))

    def calibrate(m):
        with torch.no_grad():
            m(input_ids=ids)

    model = mtq.quantize(model, mtq.NVFP4_EXPERTS_ONLY_CFG, calibrate)
    out = tmp_path_factory.mktemp("modelopt_export") / "ckpt"
    export_hf_checkpoint(model, export_dir=out)
    for f in Path(src).iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            shutil.copy(f, out / f.name)
    return out


def test_modelopt_export_round_trip(modelopt_export, modelopt_nvfp4, tmp_path):
    from safetensors.torch import load_file

    ckpt = load_file(modelopt_export / "model.safetensors")
    out = tmp_path / "export.gguf"
    convert(ConvertOptions(modelopt_export, out, outtype="bf16", progress=False))
    tensors = {t.name: t for t in GGUFReader(out).tensors}
    layers = sorted({int(k.split(".")[3]) for k in ckpt if ".experts." in k})
    n_expert = 1 + max(int(k.split(".")[5]) for k in ckpt if ".experts." in k)
    checked = fused = 0
    for layer in layers:
        blk, base = f"blk.{layer}.", f"model.decoder.layers.{layer}.experts."
        same = all(torch.equal(ckpt[f"{base}{e}.gate_proj.weight_scale_2"], ckpt[f"{base}{e}.up_proj.weight_scale_2"])
                   for e in range(n_expert))
        groups = {"ffn_gate_up_exps": ["gate_proj", "up_proj"]} if same else {
            "ffn_gate_exps": ["gate_proj"], "ffn_up_exps": ["up_proj"]}
        groups["ffn_down_exps"] = ["down_proj"]
        fused += same
        router = ckpt[f"model.decoder.layers.{layer}.router.per_expert_scale"].float().numpy()
        for gguf_name, projs in groups.items():
            w = tensors[blk + gguf_name + ".weight"]
            assert w.tensor_type == T.NVFP4
            blocks = quants.dequantize(w.data, T.NVFP4)
            scale = tensors[blk + gguf_name + ".scale"].data
            for e in range(n_expert):
                rows = 0
                for proj in projs:
                    p = f"{base}{e}.{proj}."
                    packed = ckpt[p + "weight"]  # [N, K/2]: the tensor's shape is [N, K]
                    q = modelopt_nvfp4(torch.Size([packed.shape[0], 2 * packed.shape[1]]), torch.float32, packed)
                    s, s2 = ckpt[p + "weight_scale"], ckpt[p + "weight_scale_2"].float()
                    mo_blocks = q.dequantize(dtype=torch.float32, scale=s, double_scale=torch.tensor(1.0),
                                             block_sizes={-1: 16}).numpy()
                    ours = blocks[e, rows : rows + mo_blocks.shape[0]]
                    rows += mo_blocks.shape[0]
                    np.testing.assert_array_equal(ours.view(np.uint32), mo_blocks.view(np.uint32))
                    s2 = np.float32(s2.item())
                    want = s2 if proj != "down_proj" else np.float32(router[e]) * s2
                    assert scale[e].view(np.uint32) == want.view(np.uint32)
                    checked += 1
    assert checked == len(layers) * n_expert * 3
    # ModelOpt's fused-expert export gives gate and up one second-level scale: fused everywhere.
    assert fused == len(layers)

    # Re-quantizing the imported file keeps the NVFP4 experts and their scales bit for bit.
    import diffgemma

    mixed = tmp_path / "q4km.gguf"
    diffgemma.quantize(out, mixed, "Q4_K_M")
    after = {t.name: t for t in GGUFReader(mixed).tensors}
    for name, t in tensors.items():
        if "_exps." in name:
            assert after[name].tensor_type == t.tensor_type
            assert np.array_equal(np.asarray(after[name].data), np.asarray(t.data)), name
    assert not any(".experts." in n for n in tensors)
