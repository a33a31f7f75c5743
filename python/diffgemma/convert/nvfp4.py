"""Import of ModelOpt NVFP4 checkpoints (e.g. nvidia/diffusiongemma-26B-A4B-it-NVFP4).

ModelOpt exports each routed expert as three linears (../shared/docs/nvfp4.md §2):
`model.decoder.layers.{L}.experts.{E}.{gate_proj,up_proj,down_proj}.` with
`weight` U8 [N, K/2] (E2M1 codes, element 2i in the low nibble, 2i+1 in the high nibble),
`weight_scale` F8_E4M3 [N, K/16] (one scale per 16 values along K), `weight_scale_2` F32 []
(the per-tensor second-level scale) and `input_scale` F32 [] (W4A4 activations only).

They become GGML NVFP4 blocks (§3.2: per 64 values, 4 scale bytes then 32 code bytes, in each
16-value sub-block code j in the low nibble and code j + 8 in the high nibble) without any
rounding: codes are permuted, scale bytes copied (§5.1). The second-level scales go to F32
`.scale` tensors [E] applied to the matmul output, the input scales to `.input_scale` [E]:

- `blk.L.ffn_gate_up_exps.weight` NVFP4, ne [H, 2I, E] (rows [0, I) gate, [I, 2I) up) with one
  `.scale` when gate and up of every expert have the same second-level (and input) scale, as
  ModelOpt's fused-expert export makes them; otherwise `ffn_gate_exps` and `ffn_up_exps` apart.
- `blk.L.ffn_down_exps.weight` NVFP4, ne [I, H, E]; its `.scale` is the router's per-expert
  scale times the down projection's second-level scale (one fp32 product, as llama.cpp's
  converter folds it), so `ffn_down_exps.scale` keeps meaning "multiply expert e's output by
  scale[e]".
"""

from __future__ import annotations

import re
import numpy as np
from gguf import MODEL_TENSOR, GGMLQuantizationType

from .errors import ConvertError
from .safetensors_reader import Checkpoint

NVFP4 = GGMLQuantizationType.NVFP4
F32 = GGMLQuantizationType.F32
_EXPERT = re.compile(r"model\.decoder\.layers\.(\d+)\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")


def is_nvfp4_checkpoint(checkpoint: Checkpoint) -> bool:
    """Per-tensor test (nvfp4.md §2.2): some expert weight is U8 with a 2-D F8_E4M3 weight_scale."""
    for name in checkpoint:
        if _EXPERT.match(name) and checkpoint.entry(name).dtype == "U8":
            scale = name[: -len("weight")] + "weight_scale"
            return scale in checkpoint and checkpoint.entry(scale).dtype == "F8_E4M3"
    return False


def _prefix(layer: int, expert: int, proj: str) -> str:
    return f"model.decoder.layers.{layer}.experts.{expert}.{proj}."


def _scalar(checkpoint: Checkpoint, name: str) -> np.float32:
    if name not in checkpoint:
        raise ConvertError(f"missing tensor {name} in the NVFP4 checkpoint")
    entry = checkpoint.entry(name)
    if entry.dtype != "F32" or entry.numel != 1:
        raise ConvertError(f"tensor {name} should be one F32 value, found {entry.dtype} {list(entry.shape)}")
    value = np.float32(checkpoint.view(name).reshape(-1)[0])
    checkpoint.release(name)
    return value


def pack_ggml_nvfp4(packed: np.ndarray, scales: np.ndarray, what: str) -> np.ndarray:
    """ModelOpt (`weight` u8 [N, K/2], `weight_scale` e4m3 bytes [N, K/16]) -> GGML NVFP4 bytes
    [N, K/64 * 36]. Lossless: a permutation of the codes and a copy of the scale bytes."""
    n, half_k = packed.shape
    k = 2 * half_k
    if k % 64:
        raise ConvertError(f"{what}: rows of {k} values do not split into GGML NVFP4's 64-value blocks")
    if scales.shape != (n, k // 16):
        raise ConvertError(f"{what}: weight_scale has shape {list(scales.shape)}, expected {[n, k // 16]}")
    if ((scales & 0x7F) == 0x7F).any():
        raise ConvertError(f"{what}: weight_scale holds NaN (E4M3 0x7F/0xFF)")
    codes = np.empty((n, k), dtype=np.uint8)
    codes[:, 0::2] = packed & 0x0F  # element 2i: low nibble
    codes[:, 1::2] = packed >> 4
    scales = scales.copy()
    negative = (scales & 0x80) != 0  # never written by ModelOpt; keep the values: flip the codes' signs
    if negative.any():
        scales[negative] &= 0x7F
        codes.reshape(n, k // 16, 16)[negative] ^= 0x08
    sub = codes.reshape(n, k // 64, 4, 16)
    qs = sub[..., :8] | (sub[..., 8:] << 4)  # [N, K/64, 4, 8]: code j low, j + 8 high
    out = np.concatenate([scales.reshape(n, k // 64, 4), qs.reshape(n, k // 64, 32)], axis=-1)
    return np.ascontiguousarray(out.reshape(n, k // 64 * 36))


def _expert_blocks(checkpoint: Checkpoint, layer: int, expert: int, proj: str, shape: tuple[int, int]) -> np.ndarray:
    prefix = _prefix(layer, expert, proj)
    weight, scale = prefix + "weight", prefix + "weight_scale"
    for name, dtype, want in ((weight, "U8", (shape[0], shape[1] // 2)), (scale, "F8_E4M3", (shape[0], shape[1] // 16))):
        if name not in checkpoint:
            raise ConvertError(f"missing tensor {name} in the NVFP4 checkpoint")
        entry = checkpoint.entry(name)
        if entry.dtype != dtype or entry.shape != want:
            raise ConvertError(f"tensor {name} is {entry.dtype} {list(entry.shape)}, expected {dtype} {list(want)}")
    blocks = pack_ggml_nvfp4(checkpoint.view(weight), checkpoint.view(scale), prefix[:-1])
    checkpoint.release(weight)
    checkpoint.release(scale)
    return blocks


def _stacked(checkpoint: Checkpoint, layer: int, n_expert: int, parts: list[tuple[str, tuple[int, int]]]):
    """Producer of an [E, rows, K/64 * 36] NVFP4 tensor: per expert, the parts' rows in order."""

    def produce() -> np.ndarray:
        return np.stack([
            np.concatenate([_expert_blocks(checkpoint, layer, e, proj, shape) for proj, shape in parts])
            for e in range(n_expert)
        ])

    return produce


def expert_plans(hp, layer: int, checkpoint: Checkpoint, used: set[str], plan_cls, gguf_name) -> list:
    """The TensorPlans of layer `layer`'s experts (weights, `.scale`, `.input_scale`), marking
    every checkpoint tensor they read as used."""
    H, I, E = hp.n_embd, hp.n_ff_exp, hp.n_expert
    s2 = {p: np.array([_scalar(checkpoint, _prefix(layer, e, p) + "weight_scale_2") for e in range(E)]) for p in
          ("gate_proj", "up_proj", "down_proj")}
    inp = {p: np.array([_scalar(checkpoint, _prefix(layer, e, p) + "input_scale") for e in range(E)]) for p in
           ("gate_proj", "up_proj", "down_proj")}
    for e in range(E):
        for p in ("gate_proj", "up_proj", "down_proj"):
            used.update(_prefix(layer, e, p) + s for s in ("weight", "weight_scale", "weight_scale_2", "input_scale"))
    per_expert = f"model.decoder.layers.{layer}.router.per_expert_scale"
    if per_expert not in checkpoint:
        raise ConvertError(f"missing tensor {per_expert} in the checkpoint")
    from .tensor_data import to_float32  # the router scale is BF16 in the real checkpoint

    router = to_float32(np.asarray(checkpoint.view(per_expert)), checkpoint.entry(per_expert).dtype).reshape(-1)
    used.add(per_expert)

    def weight(tensor: MODEL_TENSOR, rows: int, k: int, parts, scale: np.ndarray, input_scale: np.ndarray) -> list:
        name = gguf_name(tensor, ".weight", layer)
        base = name[: -len(".weight")]
        return [
            plan_cls(name, (E, rows, k), NVFP4, producer=_stacked(checkpoint, layer, E, parts)),
            plan_cls(base + ".scale", (E,), F32, generated=scale.astype(np.float32)),
            plan_cls(base + ".input_scale", (E,), F32, generated=input_scale.astype(np.float32)),
        ]

    plans = []
    if np.array_equal(s2["gate_proj"], s2["up_proj"]) and np.array_equal(inp["gate_proj"], inp["up_proj"]):
        plans += weight(MODEL_TENSOR.FFN_GATE_UP_EXP, 2 * I, H, [("gate_proj", (I, H)), ("up_proj", (I, H))],
                        s2["gate_proj"], inp["gate_proj"])
    else:  # fusing would need a lossy re-scaling (nvfp4.md §5.3): keep them apart
        plans += weight(MODEL_TENSOR.FFN_GATE_EXP, I, H, [("gate_proj", (I, H))], s2["gate_proj"], inp["gate_proj"])
        plans += weight(MODEL_TENSOR.FFN_UP_EXP, I, H, [("up_proj", (I, H))], s2["up_proj"], inp["up_proj"])
    plans += weight(MODEL_TENSOR.FFN_DOWN_EXP, H, I, [("down_proj", (H, I))], router * s2["down_proj"],
                    inp["down_proj"])
    return plans
