"""Which HF tensors become which GGUF tensors, with what shape and type (gguf-layout.md §2).

The unsloth files (llama.cpp PR #24423) use gguf-py's GEMMA4 tensor names for the shared
backbone, plus names gguf-py 0.19 does not know: the encoder's per-layer scalar, the four
self-conditioning tensors and the two `.scale` tensors. Nothing is transformed: norms are stored
as in HF (Gemma 4 multiplies by w, not 1+w), Q/K are not permuted, the fused expert tensors are
written as they are, and there is no output.weight (the LM head is tied to token_embd).

Shapes here are numpy (row-major) shapes; GGUF/ggml `ne` is the reverse.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
from gguf import GGML_QUANT_SIZES, MODEL_TENSOR, TENSOR_NAMES, GGMLQuantizationType, LlamaFileType

from . import nvfp4
from .errors import ConvertError
from .hf_config import HParams
from .safetensors_reader import Checkpoint

ARCH = "diffusion-gemma"

# --outtype -> (GGUF type of the big matrices, general.file_type as llama.cpp's LlamaFileType)
OUTTYPES: dict[str, tuple[GGMLQuantizationType, LlamaFileType]] = {
    "f32": (GGMLQuantizationType.F32, LlamaFileType.ALL_F32),
    "f16": (GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
    "bf16": (GGMLQuantizationType.BF16, LlamaFileType.MOSTLY_BF16),
    "q8_0": (GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
}

# Source dtypes we can convert (safetensors spelling).
FLOAT_DTYPES = ("F32", "F16", "BF16", "F64")

DECODER = "model.decoder."
ENCODER_LAYERS = "model.encoder.language_model.layers."
# Not part of the text model (vision) or tied to decoder tensors (everything else the encoder has).
SKIPPED_PREFIXES = ("model.encoder.vision_tower.", "model.encoder.embed_vision.", "model.encoder.")


def _gguf(tensor: MODEL_TENSOR, suffix: str = ".weight", bid: int | None = None) -> str:
    name = TENSOR_NAMES[tensor]
    return (name.format(bid=bid) if bid is not None else name) + suffix


# Names gguf-py 0.19 lacks, as PR #24423 spells them.
ENC_LAYER_OUT_SCALE = "blk.{bid}.enc_layer_output_scale.weight"
SELF_COND_PRE_NORM = "self_cond_pre_norm.weight"
SELF_COND_GATE = "self_cond_gate.weight"
SELF_COND_UP = "self_cond_up.weight"
SELF_COND_DOWN = "self_cond_down.weight"


@dataclass(frozen=True, eq=False)  # eq=False: `generated` is an array
class TensorPlan:
    """One GGUF tensor: where its data comes from and what is written."""

    name: str  # GGUF name
    shape: tuple[int, ...]  # numpy shape as written
    qtype: GGMLQuantizationType
    source: str | None = None  # HF tensor name; None for a generated tensor
    source_dtype: str | None = None  # safetensors dtype of `source`
    generated: np.ndarray | None = None  # the data of a generated tensor (float32)
    producer: Callable[[], np.ndarray] | None = None  # makes data already in `qtype` (NVFP4 import)

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        block, type_size = GGML_QUANT_SIZES[self.qtype]
        return self.numel // block * type_size

    @property
    def layer(self) -> int:
        m = re.match(r"blk\.(\d+)\.", self.name)
        return int(m.group(1)) if m else -1


def expected_tensors(hp: HParams) -> list[tuple[str, str, tuple[int, ...]]]:
    """(GGUF name, HF name, HF shape) for every tensor taken from the checkpoint."""
    H, F, E, I = hp.n_embd, hp.n_ff, hp.n_expert, hp.n_ff_exp
    out = [
        (_gguf(MODEL_TENSOR.TOKEN_EMBD), DECODER + "embed_tokens.weight", (hp.vocab_size, H)),
        (_gguf(MODEL_TENSOR.OUTPUT_NORM), DECODER + "norm.weight", (H,)),
        (SELF_COND_PRE_NORM, DECODER + "self_conditioning.pre_norm.weight", (H,)),
        (SELF_COND_GATE, DECODER + "self_conditioning.gate_proj.weight", (F, H)),
        (SELF_COND_UP, DECODER + "self_conditioning.up_proj.weight", (F, H)),
        (SELF_COND_DOWN, DECODER + "self_conditioning.down_proj.weight", (H, F)),
    ]
    for i in range(hp.n_layer):
        hd, n_kv = hp.head_dim(i), hp.n_head_kv[i]
        q, kv = hp.n_head * hd, n_kv * hd
        hf = f"{DECODER}layers.{i}."
        T = MODEL_TENSOR
        layer = [
            (T.ATTN_NORM, "input_layernorm.weight", (H,)),
            (T.ATTN_Q, "self_attn.q_proj.weight", (q, H)),
            (T.ATTN_K, "self_attn.k_proj.weight", (kv, H)),
            # Full layers have no v_proj: V is the raw k_proj output (K = V).
            *([(T.ATTN_V, "self_attn.v_proj.weight", (kv, H))] if hp.is_swa[i] else []),
            (T.ATTN_OUT, "self_attn.o_proj.weight", (H, q)),
            (T.ATTN_Q_NORM, "self_attn.q_norm.weight", (hd,)),
            (T.ATTN_K_NORM, "self_attn.k_norm.weight", (hd,)),
            (T.ATTN_POST_NORM, "post_attention_layernorm.weight", (H,)),
            (T.FFN_PRE_NORM, "pre_feedforward_layernorm.weight", (H,)),
            (T.FFN_GATE, "mlp.gate_proj.weight", (F, H)),
            (T.FFN_UP, "mlp.up_proj.weight", (F, H)),
            (T.FFN_DOWN, "mlp.down_proj.weight", (H, F)),
            (T.FFN_POST_NORM_1, "post_feedforward_layernorm_1.weight", (H,)),
            (T.FFN_PRE_NORM_2, "pre_feedforward_layernorm_2.weight", (H,)),
            (T.FFN_GATE_INP, "router.proj.weight", (E, H)),
            # The router's scales are stored raw; the runtime applies them (§2.3).
            ((T.FFN_GATE_INP, ".scale"), "router.scale", (H,)),
            (T.FFN_GATE_UP_EXP, "experts.gate_up_proj", (E, 2 * I, H)),  # rows [0, I) gate, [I, 2I) up
            (T.FFN_DOWN_EXP, "experts.down_proj", (E, H, I)),
            ((T.FFN_DOWN_EXP, ".scale"), "router.per_expert_scale", (E,)),
            (T.FFN_POST_NORM_2, "post_feedforward_layernorm_2.weight", (H,)),
            (T.FFN_POST_NORM, "post_feedforward_layernorm.weight", (H,)),
            (T.LAYER_OUT_SCALE, "layer_scalar", (1,)),  # the decoder (canvas) scalar
        ]
        for target, hf_suffix, shape in layer:
            tensor, suffix = target if isinstance(target, tuple) else (target, ".weight")
            out.append((_gguf(tensor, suffix, i), hf + hf_suffix, shape))
        # The encoder shares every weight with the decoder except this buffer (model-spec §9).
        out.append((ENC_LAYER_OUT_SCALE.format(bid=i), f"{ENCODER_LAYERS}{i}.layer_scalar", (1,)))
    return out


def rope_freqs(hp: HParams) -> np.ndarray:
    """Frequency divisors for full layers: 1 on the rotated pairs, 1e30 (no rotation) on the rest.

    With ggml rope over all head_dim_full dims, this reproduces HF's "proportional" partial rope:
    inv_freq[i] = theta^(-2i/head_dim) for i < n_rot, 0 beyond (§2.3).
    """
    n_pairs = hp.head_dim_full // 2
    n_rot = hp.n_rot_full_pairs
    return np.array([1.0] * n_rot + [1e30] * (n_pairs - n_rot), dtype=np.float32)


def output_type(name: str, shape: tuple[int, ...], outtype: GGMLQuantizationType) -> GGMLQuantizationType:
    """llama.cpp's per-tensor type rules (`prepare_tensors`, §2.3)."""
    if (
        len(shape) <= 1
        or name.endswith("_norm.weight")
        or not name.endswith(".weight")
        or re.fullmatch(r"blk\.\d+\.ffn_gate_inp\.weight", name)
    ):
        return GGMLQuantizationType.F32
    if outtype == GGMLQuantizationType.Q8_0 and shape[-1] % GGML_QUANT_SIZES[outtype][0]:
        # Rows that do not split into 32-value blocks cannot be Q8_0; llama.cpp falls back to F16.
        return GGMLQuantizationType.F16
    return outtype


def plan_tensors(hp: HParams, n_vocab: int, checkpoint: Checkpoint, outtype: str) -> list[TensorPlan]:
    """Every GGUF tensor in llama.cpp loader order, after checking the checkpoint against the config."""
    big_type = OUTTYPES[outtype][0]
    plans: list[TensorPlan] = []
    used: set[str] = set()
    nvfp4_experts = nvfp4.is_nvfp4_checkpoint(checkpoint)
    for gguf_name, hf_name, shape in expected_tensors(hp):
        if nvfp4_experts and hf_name.endswith(("experts.gate_up_proj", "experts.down_proj", "router.per_expert_scale")):
            if hf_name.endswith("gate_up_proj"):  # one call plans the layer's experts (nvfp4.py)
                layer = int(re.search(r"layers\.(\d+)\.", hf_name).group(1))
                plans += nvfp4.expert_plans(hp, layer, checkpoint, used, TensorPlan, _gguf)
            continue
        if hf_name not in checkpoint:
            raise ConvertError(f"missing tensor {hf_name} (for {gguf_name}) in the checkpoint")
        entry = checkpoint.entry(hf_name)
        if entry.shape != shape:
            raise ConvertError(
                f"tensor {hf_name} has shape {list(entry.shape)}, but config.json implies {list(shape)}"
            )
        if entry.dtype not in FLOAT_DTYPES:
            raise ConvertError(
                f"tensor {hf_name} has dtype {entry.dtype}; only {', '.join(FLOAT_DTYPES)} checkpoints are supported"
            )
        if hf_name.endswith("embed_tokens.weight"):
            if n_vocab > shape[0]:
                raise ConvertError(f"the tokenizer has {n_vocab} tokens but {hf_name} has only {shape[0]} rows")
            shape = (n_vocab, *shape[1:])  # padding rows past the tokenizer are dropped
        used.add(hf_name)
        plans.append(TensorPlan(gguf_name, shape, output_type(gguf_name, shape, big_type), hf_name, entry.dtype))

    freqs = rope_freqs(hp)
    name = _gguf(MODEL_TENSOR.ROPE_FREQS)
    plans.append(TensorPlan(name, freqs.shape, output_type(name, freqs.shape, big_type), generated=freqs))

    _warn_unused(name for name in checkpoint if name not in used)
    # llama_model_loader's weight_name_comparer: globals first, then blocks by number; by name within.
    return sorted(plans, key=lambda p: (p.layer, p.name))


def _warn_unused(names: Iterable[str]) -> None:
    """Tensors transformers would also not load are ignored; anything else is worth a warning."""
    ignored = [n for n in names if not n.startswith(SKIPPED_PREFIXES)]
    if ignored:
        shown = ", ".join(ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
        print(f"warning: ignoring {len(ignored)} tensor(s) the GGUF layout has no place for: {shown}", file=sys.stderr)
