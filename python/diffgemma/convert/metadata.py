"""The GGUF key/value metadata, in the order and with the types of the unsloth files (§1.1).

The order is what llama.cpp's converter produces as a side effect (an overwritten key keeps its
first position); loaders look keys up by name, so it is cosmetic, but matching it makes our
files diff cleanly against theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_VERSION, GGUFValueType, Keys, size_label

from .errors import ConvertError
from .hf_config import HParams, read_json
from .hf_vocab import Vocab
from .layout import ARCH, OUTTYPES, TensorPlan

T = GGUFValueType

CANVAS_LENGTH = "diffusion.canvas_length"  # no arch prefix, as PR #24423 writes it
GENERATION_CONFIG = "generation_config.json"

# Optional entropy-bound sampler keys (§1.2): key, type, generation_config.json field, and the
# transformers 5.23 default (DiffusionGemmaGenerationConfig._get_default_generation_params) used
# when the field is missing or null, which is also what the runtime assumes without the key.
DIFFUSION_PARAMS: tuple[tuple[str, GGUFValueType, str, float], ...] = (
    ("diffusion.eb_max_steps", T.UINT32, "max_denoising_steps", 48),
    ("diffusion.eb_t_min", T.FLOAT32, "t_min", 0.4),
    ("diffusion.eb_t_max", T.FLOAT32, "t_max", 0.8),
    ("diffusion.eb_entropy_bound", T.FLOAT32, "sampler_config.entropy_bound", 0.1),
    ("diffusion.eb_stability_threshold", T.UINT32, "stability_threshold", 1),
    ("diffusion.eb_confidence_threshold", T.FLOAT32, "confidence_threshold", 0.005),
)

# SpecialVocab writes a type only if GGUFWriter has an add_<type>_token_id handler (none for cls).
_SPECIAL_ID_KEYS = {
    "bos": Keys.Tokenizer.BOS_ID,
    "eos": Keys.Tokenizer.EOS_ID,
    "unk": Keys.Tokenizer.UNK_ID,
    "sep": Keys.Tokenizer.SEP_ID,
    "pad": Keys.Tokenizer.PAD_ID,
    "mask": Keys.Tokenizer.MASK_ID,
    "eot": Keys.Tokenizer.EOT_ID,
    "eom": Keys.Tokenizer.EOM_ID,
}
_ADD_FLAG_KEYS = {
    "bos": Keys.Tokenizer.ADD_BOS,
    "eos": Keys.Tokenizer.ADD_EOS,
    "sep": Keys.Tokenizer.ADD_SEP,
}


@dataclass(frozen=True)
class KV:
    key: str
    type: GGUFValueType
    value: Any
    sub_type: GGUFValueType | None = None  # element type of an ARRAY


class KVList:
    """Ordered metadata; setting an existing key replaces its value but keeps its position."""

    def __init__(self) -> None:
        self._items: dict[str, KV] = {}

    def set(self, key: str, vtype: GGUFValueType, value: Any, sub_type: GGUFValueType | None = None) -> None:
        self._items[key] = KV(key, vtype, value, sub_type)

    def __iter__(self):
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)


def build_metadata(
    hp: HParams,
    vocab: Vocab,
    tensors: list[TensorPlan],
    outtype: str,
    name: str,
    diffusion_params: list[KV] | None = None,
) -> list[KV]:
    kv = KVList()
    arch = lambda key: key.format(arch=ARCH)  # noqa: E731

    kv.set(Keys.General.ARCHITECTURE, T.STRING, ARCH)
    kv.set(Keys.General.TYPE, T.STRING, "model")
    kv.set(Keys.General.NAME, T.STRING, name)
    kv.set(Keys.General.SIZE_LABEL, T.STRING, size_label(*parameter_counts(tensors)))

    kv.set(arch(Keys.LLM.BLOCK_COUNT), T.UINT32, hp.n_layer)
    kv.set(arch(Keys.LLM.CONTEXT_LENGTH), T.UINT32, hp.context_length)
    kv.set(arch(Keys.LLM.EMBEDDING_LENGTH), T.UINT32, hp.n_embd)
    kv.set(arch(Keys.LLM.FEED_FORWARD_LENGTH), T.UINT32, hp.n_ff)
    kv.set(arch(Keys.Attention.HEAD_COUNT), T.UINT32, hp.n_head)
    kv.set(arch(Keys.Attention.HEAD_COUNT_KV), T.ARRAY, list(hp.n_head_kv), T.INT32)
    kv.set(arch(Keys.Rope.FREQ_BASE), T.FLOAT32, hp.rope_theta_full)
    kv.set(arch(Keys.Rope.FREQ_BASE_SWA), T.FLOAT32, hp.rope_theta_swa)
    kv.set(arch(Keys.Attention.LAYERNORM_RMS_EPS), T.FLOAT32, hp.rms_norm_eps)
    kv.set(arch(Keys.LLM.EXPERT_COUNT), T.UINT32, hp.n_expert)
    kv.set(arch(Keys.LLM.EXPERT_USED_COUNT), T.UINT32, hp.n_expert_used)
    kv.set(arch(Keys.Attention.KEY_LENGTH), T.UINT32, hp.head_dim_full)
    kv.set(arch(Keys.Attention.VALUE_LENGTH), T.UINT32, hp.head_dim_full)
    kv.set(arch(Keys.LLM.FINAL_LOGIT_SOFTCAPPING), T.FLOAT32, hp.final_logit_softcapping)
    kv.set(arch(Keys.Attention.SLIDING_WINDOW), T.UINT32, hp.sliding_window)
    kv.set(arch(Keys.Attention.SHARED_KV_LAYERS), T.UINT32, hp.shared_kv_layers)
    kv.set(arch(Keys.LLM.EMBD_LENGTH_PER_LAYER_INP), T.UINT32, hp.embedding_length_per_layer_input)
    kv.set(arch(Keys.Attention.SLIDING_WINDOW_PATTERN), T.ARRAY, list(hp.is_swa), T.BOOL)
    kv.set(arch(Keys.Attention.KEY_LENGTH_SWA), T.UINT32, hp.head_dim_swa)
    kv.set(arch(Keys.Attention.VALUE_LENGTH_SWA), T.UINT32, hp.head_dim_swa)
    kv.set(arch(Keys.LLM.EXPERT_FEED_FORWARD_LENGTH), T.UINT32, hp.n_ff_exp)
    # Full layers: rope over the whole head, partial rotation done by rope_freqs (§2.3).
    kv.set(arch(Keys.Rope.DIMENSION_COUNT), T.UINT32, hp.head_dim_full)
    kv.set(arch(Keys.Rope.DIMENSION_COUNT_SWA), T.UINT32, int(hp.head_dim_swa * hp.partial_rotary_swa))
    kv.set(arch(Keys.Attention.CAUSAL), T.BOOL, False)
    kv.set(CANVAS_LENGTH, T.UINT32, hp.canvas_length)
    for item in diffusion_params or []:
        kv.set(item.key, item.type, item.value, item.sub_type)

    _add_vocab(kv, vocab)

    kv.set(Keys.General.QUANTIZATION_VERSION, T.UINT32, GGML_QUANT_VERSION)
    kv.set(Keys.General.FILE_TYPE, T.UINT32, int(OUTTYPES[outtype][1]))
    return list(kv)


def _add_vocab(kv: KVList, vocab: Vocab) -> None:
    # Gemma4Model.set_vocab, then SpecialVocab.add_to_gguf, then the two flags it forces.
    kv.set(Keys.Tokenizer.MODEL, T.STRING, "gemma4")
    kv.set(Keys.Tokenizer.LIST, T.ARRAY, vocab.tokens, T.STRING)
    kv.set(Keys.Tokenizer.SCORES, T.ARRAY, vocab.scores, T.FLOAT32)
    kv.set(Keys.Tokenizer.TOKEN_TYPE, T.ARRAY, vocab.token_types, T.INT32)
    if vocab.merges:
        kv.set(Keys.Tokenizer.MERGES, T.ARRAY, vocab.merges, T.STRING)
    for typ, token_id in vocab.special_token_ids.items():
        if typ in _SPECIAL_ID_KEYS:
            kv.set(_SPECIAL_ID_KEYS[typ], T.UINT32, token_id)
    for typ, flag in vocab.add_special_token.items():
        if typ in _ADD_FLAG_KEYS:  # SpecialVocab has no handler for the others and skips them
            kv.set(_ADD_FLAG_KEYS[typ], T.BOOL, flag)
    _add_chat_template(kv, vocab.chat_template)
    kv.set(Keys.Tokenizer.ADD_PREFIX, T.BOOL, False)
    kv.set(Keys.Tokenizer.ADD_BOS, T.BOOL, True)


def _add_chat_template(kv: KVList, template: str | list[dict[str, str]] | None) -> None:
    if template is None:
        return
    if isinstance(template, str):
        kv.set(Keys.Tokenizer.CHAT_TEMPLATE, T.STRING, template)
        return
    # Named templates, stored as GGUFWriter.add_chat_template does: the named ones, their list,
    # then the default one as tokenizer.chat_template.
    default, names = None, []
    for choice in template:
        name = "".join(c if c.isascii() and c.isalnum() else "_" for c in choice.get("name", ""))
        body = choice.get("template")
        if not name or body is None:
            continue
        if name == "default":
            default = body
        elif name not in names:
            names.append(name)
            kv.set(Keys.Tokenizer.CHAT_TEMPLATE_N.format(name=name), T.STRING, body)
    if names:
        kv.set(Keys.Tokenizer.CHAT_TEMPLATES, T.ARRAY, names, T.STRING)
    if default is not None:
        kv.set(Keys.Tokenizer.CHAT_TEMPLATE, T.STRING, default)


def parameter_counts(tensors: list[TensorPlan]) -> tuple[int, int, int, int]:
    """(total, shared, per-expert, expert count) as GGUFWriter.get_total_parameter_count computes
    them, for general.size_label (e.g. "128x2.6B": 128 experts, 2.6B params active per expert)."""
    total = shared = expert = expert_sum = n_expert_tensors = 0
    for t in tensors:
        size = t.numel
        total += size
        if "_exps." in t.name and len(t.shape) >= 3:
            count = t.shape[-3]
            expert += size // count
            expert_sum += count
            n_expert_tensors += 1
        else:
            shared += size
    return total, shared, expert, (expert_sum // n_expert_tensors if n_expert_tensors else 0)


def load_diffusion_params(model_dir: Path) -> list[KV]:
    """The six diffusion.eb_* keys from generation_config.json (defaults where a field is unset)."""
    path = Path(model_dir) / GENERATION_CONFIG
    config = read_json(path, "the generation config") if path.is_file() else {}
    out = []
    for key, vtype, field, default in DIFFUSION_PARAMS:
        value: Any = config
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            value = default
        if vtype == T.UINT32:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConvertError(f"{field} in {GENERATION_CONFIG} must be a non-negative integer, got {value!r}")
            out.append(KV(key, vtype, value))
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConvertError(f"{field} in {GENERATION_CONFIG} must be a number, got {value!r}")
            out.append(KV(key, vtype, float(value)))
    return out
