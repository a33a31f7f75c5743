"""Hyperparameters of a DiffusionGemma checkpoint, read from the raw config.json.

We read the JSON ourselves instead of going through transformers' config classes, because the
per-layer attention geometry has two spellings (gguf-layout.md §1.3.1):

- the released config carries `global_head_dim` and `num_global_key_value_heads`;
- a config saved by transformers 5.x carries `per_layer_config` instead
  (`{"5": {"head_dim": 512, "num_key_value_heads": 2}, ...}`, full-attention layers only).

Both are accepted. Fields that are absent take the defaults of transformers 5.23
`DiffusionGemmaTextConfig` / `DiffusionGemmaConfig`, since that is what the model runs with.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConvertError

CONFIG_FILE = "config.json"

SUPPORTED_ARCHITECTURES = ("DiffusionGemmaForBlockDiffusion", "DiffusionGemma4ModelForBlockDiffusion")

SLIDING = "sliding_attention"
FULL = "full_attention"

# transformers 5.23 DiffusionGemmaTextConfig defaults for the fields we use.
_TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262_144,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 30,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "max_position_embeddings": 131_072,
    "rms_norm_eps": 1e-6,
    "sliding_window": 512,
    "final_logit_softcapping": 30.0,  # a class attribute, so save_pretrained never writes it
}
_DEFAULT_GLOBAL_HEAD_DIM = 512
_DEFAULT_ROPE = {
    SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
    FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
}
_DEFAULT_CANVAS_LENGTH = 256
_PER_LAYER_KEYS = {"head_dim", "num_key_value_heads"}


@dataclass(frozen=True)
class HParams:
    """Everything the GGUF metadata and the tensor layout need, per gguf-layout.md §1.3."""

    architecture: str
    vocab_size: int  # rows of embed_tokens per the config; the GGUF keeps only the tokenizer's count
    n_embd: int
    n_ff: int  # dense MLP and self-conditioning MLP width
    n_ff_exp: int  # per-expert width
    n_expert: int
    n_expert_used: int
    n_head: int
    is_swa: tuple[bool, ...]  # per layer; True = sliding attention
    n_head_kv: tuple[int, ...]  # per layer
    head_dim_swa: int
    head_dim_full: int
    context_length: int
    rms_norm_eps: float
    sliding_window: int
    final_logit_softcapping: float
    rope_theta_full: float
    rope_theta_swa: float
    partial_rotary_full: float
    partial_rotary_swa: float
    shared_kv_layers: int
    embedding_length_per_layer_input: int
    canvas_length: int

    @property
    def n_layer(self) -> int:
        return len(self.is_swa)

    def head_dim(self, layer: int) -> int:
        return self.head_dim_swa if self.is_swa[layer] else self.head_dim_full

    @property
    def n_rot_full_pairs(self) -> int:
        """Rotated frequency pairs of a full layer: int(512 * 0.25 / 2) = 64 for the real model."""
        return int(self.head_dim_full * self.partial_rotary_full / 2)


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConvertError(f"missing {path.name} in {path.parent} ({what})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"cannot read {path}: {e}") from None
    if not isinstance(data, dict):
        raise ConvertError(f"{path} does not hold a JSON object")
    return data


def load_hparams(model_dir: Path) -> HParams:
    root = read_json(Path(model_dir) / CONFIG_FILE, "the model config")

    archs = root.get("architectures") or []
    if isinstance(archs, str):
        archs = [archs]
    arch = next((a for a in archs if a in SUPPORTED_ARCHITECTURES), None)
    if arch is None:
        raise ConvertError(
            f"unsupported architecture {archs or 'None'} in {CONFIG_FILE}; "
            f"this converter handles {' / '.join(SUPPORTED_ARCHITECTURES)}"
        )

    if root.get("tie_word_embeddings") is False:
        # The GGUF has no output.weight and one set of weights for encoder and decoder.
        raise ConvertError(f"tie_word_embeddings is false in {CONFIG_FILE}; only tied checkpoints are supported")

    # The real config nests the text model under text_config; accept a flat one too.
    text = root.get("text_config")
    if text is None:
        text = root
    if not isinstance(text, dict):
        raise ConvertError(f"text_config in {CONFIG_FILE} is not an object")

    def get(key: str) -> Any:
        value = text.get(key)
        if value is None:
            if key not in _TEXT_DEFAULTS:
                raise ConvertError(f"{CONFIG_FILE} lacks text_config.{key}, which a DiffusionGemma model needs")
            value = _TEXT_DEFAULTS[key]
        return value

    n_layer = _positive_int(get("num_hidden_layers"), "num_hidden_layers")
    layer_types = _layer_types(text.get("layer_types"), n_layer)
    is_swa = tuple(t == SLIDING for t in layer_types)

    head_dim_swa = _positive_int(get("head_dim"), "head_dim")
    n_kv_swa = _positive_int(get("num_key_value_heads"), "num_key_value_heads")
    head_dims, n_kv = _per_layer_geometry(text, is_swa, head_dim_swa, n_kv_swa)

    # key_length / key_length_swa are scalars: one head size per attention type.
    head_dim_full = _uniform([head_dims[i] for i in range(n_layer) if not is_swa[i]], FULL)
    if any(is_swa):
        head_dim_swa = _uniform([head_dims[i] for i in range(n_layer) if is_swa[i]], SLIDING)

    rope = text.get("rope_parameters") or _DEFAULT_ROPE
    rope_full = _rope_params(rope, FULL, allowed=("proportional", "default"))
    rope_swa = _rope_params(rope, SLIDING, allowed=("default",))
    if rope_full.get("rope_type", "default") == "default" and rope_full.get("partial_rotary_factor", 1.0) != 1.0:
        # "default" with a partial factor rotates dims with a *different* frequency base than
        # "proportional"; rope_freqs (which only masks dims out) cannot express it.
        raise ConvertError("full_attention rope_type 'default' with partial_rotary_factor != 1 is not supported")

    canvas_length = root.get("canvas_length", _DEFAULT_CANVAS_LENGTH)
    if isinstance(canvas_length, bool) or not isinstance(canvas_length, int) or canvas_length <= 0:
        raise ConvertError(f"canvas_length in {CONFIG_FILE} must be a positive integer, got {canvas_length!r}")

    return HParams(
        architecture=arch,
        vocab_size=_positive_int(get("vocab_size"), "vocab_size"),
        n_embd=_positive_int(get("hidden_size"), "hidden_size"),
        n_ff=_positive_int(get("intermediate_size"), "intermediate_size"),
        n_ff_exp=_positive_int(get("moe_intermediate_size"), "moe_intermediate_size"),
        n_expert=_positive_int(get("num_experts"), "num_experts"),
        n_expert_used=_positive_int(get("top_k_experts"), "top_k_experts"),
        n_head=_positive_int(get("num_attention_heads"), "num_attention_heads"),
        is_swa=is_swa,
        n_head_kv=tuple(n_kv),
        head_dim_swa=head_dim_swa,
        head_dim_full=head_dim_full,
        context_length=_positive_int(get("max_position_embeddings"), "max_position_embeddings"),
        rms_norm_eps=_number(get("rms_norm_eps"), "rms_norm_eps"),
        sliding_window=_positive_int(get("sliding_window"), "sliding_window"),
        final_logit_softcapping=_number(get("final_logit_softcapping"), "final_logit_softcapping"),
        rope_theta_full=_number(rope_full.get("rope_theta", _DEFAULT_ROPE[FULL]["rope_theta"]), "rope_theta"),
        rope_theta_swa=_number(rope_swa.get("rope_theta", _DEFAULT_ROPE[SLIDING]["rope_theta"]), "rope_theta"),
        partial_rotary_full=_number(rope_full.get("partial_rotary_factor", 1.0), "partial_rotary_factor"),
        partial_rotary_swa=_number(rope_swa.get("partial_rotary_factor", 1.0), "partial_rotary_factor"),
        # Gemma 3n features DiffusionGemma does not use; written as 0 unless a config sets them.
        shared_kv_layers=int(text.get("num_kv_shared_layers") or 0),
        embedding_length_per_layer_input=int(text.get("hidden_size_per_layer_input") or 0),
        canvas_length=canvas_length,
    )


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConvertError(f"text_config.{key} in {CONFIG_FILE} must be a positive integer, got {value!r}")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConvertError(f"{key} in {CONFIG_FILE} must be a number, got {value!r}")
    return float(value)


def _layer_types(layer_types: Any, n_layer: int) -> list[str]:
    if layer_types is None:
        # transformers' default: five sliding layers, then one full, repeated.
        return [SLIDING if (i + 1) % 6 else FULL for i in range(n_layer)]
    if not isinstance(layer_types, list) or len(layer_types) != n_layer:
        raise ConvertError(f"text_config.layer_types in {CONFIG_FILE} must list {n_layer} layer types")
    bad = sorted({t for t in layer_types if t not in (SLIDING, FULL)}, key=str)
    if bad:
        raise ConvertError(f"unsupported layer types {bad} in {CONFIG_FILE}")
    layer_types = list(layer_types)
    if layer_types[-1] != FULL:
        # DiffusionGemmaTextConfig.__post_init__ does the same, so the model has a full last layer.
        print(f"warning: last layer type is {layer_types[-1]}; forcing full_attention as transformers does",
              file=sys.stderr)
        layer_types[-1] = FULL
    return layer_types


def _per_layer_geometry(
    text: dict[str, Any], is_swa: tuple[bool, ...], head_dim_swa: int, n_kv_swa: int
) -> tuple[list[int], list[int]]:
    """Per-layer (head_dim, kv heads), from either spelling of the full-layer overrides."""
    n_layer = len(is_swa)
    per_layer = text.get("per_layer_config")
    if per_layer is None:
        # Released spelling; transformers turns it into per_layer_config the same way.
        global_head_dim = text.get("global_head_dim") or _DEFAULT_GLOBAL_HEAD_DIM
        n_kv_global = text.get("num_global_key_value_heads")
        if not text.get("attention_k_eq_v", True):
            n_kv_global = None  # transformers gates the kv override on this flag
        override = {"head_dim": global_head_dim}
        if n_kv_global is not None:
            override["num_key_value_heads"] = n_kv_global
        per_layer = {str(i): override for i in range(n_layer) if not is_swa[i]}
    if not isinstance(per_layer, dict):
        raise ConvertError(f"text_config.per_layer_config in {CONFIG_FILE} must be an object")

    head_dims = [head_dim_swa] * n_layer
    n_kv = [n_kv_swa] * n_layer
    for key, overrides in per_layer.items():
        try:
            layer = int(key)  # transformers zero-pads the keys ("05")
        except ValueError:
            raise ConvertError(f"per_layer_config key {key!r} in {CONFIG_FILE} is not a layer index") from None
        if not 0 <= layer < n_layer or not isinstance(overrides, dict):
            raise ConvertError(f"per_layer_config entry {key!r} in {CONFIG_FILE} is invalid")
        unsupported = sorted(set(overrides) - _PER_LAYER_KEYS)
        if unsupported:
            raise ConvertError(
                f"per_layer_config overrides {unsupported} for layer {layer}; "
                "the GGUF layout can only vary head_dim and num_key_value_heads per layer"
            )
        if "head_dim" in overrides:
            head_dims[layer] = _positive_int(overrides["head_dim"], f"per_layer_config.{key}.head_dim")
        if "num_key_value_heads" in overrides:
            n_kv[layer] = _positive_int(overrides["num_key_value_heads"], f"per_layer_config.{key}.num_key_value_heads")
    return head_dims, n_kv


def _uniform(head_dims: list[int], layer_type: str) -> int:
    if len(set(head_dims)) != 1:
        raise ConvertError(
            f"{layer_type} layers have different head_dim values {sorted(set(head_dims))}; "
            "the GGUF layout stores one per attention type"
        )
    return head_dims[0]


def _rope_params(rope: Any, layer_type: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    params = rope.get(layer_type) if isinstance(rope, dict) else None
    if params is None:
        params = _DEFAULT_ROPE[layer_type]
    if not isinstance(params, dict):
        raise ConvertError(f"rope_parameters.{layer_type} in {CONFIG_FILE} must be an object")
    rope_type = params.get("rope_type", "default")
    if rope_type not in allowed:
        raise ConvertError(
            f"rope_parameters.{layer_type}.rope_type {rope_type!r} is not supported (expected {' or '.join(allowed)})"
        )
    return params
