"""Tokenizer files -> the GGUF vocabulary, without transformers or tokenizers.

llama.cpp's Gemma 4 converter (gguf-layout.md §3.1) writes:

- tokens, scores and types from `gguf.LlamaHfVocab`, which asks a transformers tokenizer for its
  vocabulary and its `all_special_ids` (CONTROL), marks `<0xXX>` tokens BYTE and the rest NORMAL,
  scores everything -1000.0, and then forces 7 tokens to USER_DEFINED so they are rendered;
- merges, special token ids and the "add bos/eos" flags from `gguf.SpecialVocab(load_merges=True)`;
- `add_space_prefix = false` and `add_bos_token = true`.

We reproduce the same values from the JSON files, emulating the parts of transformers 5.23
(`TokenizersBackend`, `GemmaTokenizer`) that decide which tokens are special, so that the
converter needs neither transformers nor tokenizers at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf import TokenType

from .errors import ConvertError
from .hf_config import read_json

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
CHAT_TEMPLATE_JINJA = "chat_template.jinja"
CHAT_TEMPLATE_JSON = "chat_template.json"
ADDITIONAL_TEMPLATES_DIR = "additional_chat_templates"
MERGES_TXT = "merges.txt"

# Gemma4Model.set_vocab: tokens the chat parser must see as text, so never CONTROL.
VISIBLE_TOKENS = frozenset(
    {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", '<|"|>'}
)
PLACEHOLDER_SCORE = -1000.0  # LlamaHfVocab has no scores for BPE

# transformers' named special-token attributes, in its order.
NAMED_SPECIALS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# GemmaTokenizer.__init__ keyword defaults, used when tokenizer_config.json does not mention the key.
GEMMA_SPECIAL_DEFAULTS = {
    "unk_token": "<unk>",
    "bos_token": "<bos>",
    "eos_token": "<eos>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}
GEMMA_TOKENIZER_CLASSES = ("GemmaTokenizer", "GemmaTokenizerFast")
# SpecialVocab's default special token types, in its order (the GGUF key order follows it).
SPECIAL_TOKEN_TYPES = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")

_BYTE_TOKEN = re.compile(rb"<0x[0-9A-Fa-f]{2}>")


@dataclass
class Vocab:
    tokens: list[bytes]
    scores: list[float]
    token_types: list[int]
    merges: list[str]
    special_token_ids: dict[str, int] = field(default_factory=dict)  # "bos" -> 2, in GGUF key order
    add_special_token: dict[str, bool] = field(default_factory=dict)  # "bos" -> True, in GGUF key order
    chat_template: str | list[dict[str, str]] | None = None


def load_vocab(model_dir: Path) -> Vocab:
    model_dir = Path(model_dir)
    if not (model_dir / TOKENIZER_JSON).is_file():
        raise ConvertError(f"missing {TOKENIZER_JSON} in {model_dir}; the GGUF needs the tokenizer")
    tokenizer = read_json(model_dir / TOKENIZER_JSON, "the tokenizer")
    config_path = model_dir / TOKENIZER_CONFIG
    config = read_json(config_path, "the tokenizer config") if config_path.is_file() else {}
    model_type = _model_type(model_dir)

    tokens, types = _token_table(tokenizer, config, model_type)
    special_ids, add_flags = _special_vocab(model_dir, tokenizer, config)
    return Vocab(
        tokens=tokens,
        scores=[PLACEHOLDER_SCORE] * len(tokens),
        token_types=types,
        merges=_merges(model_dir, tokenizer),
        special_token_ids=special_ids,
        add_special_token=add_flags,
        chat_template=_chat_template(model_dir, config),
    )


# --- tokens and types (gguf.LlamaHfVocab + Gemma4Model.set_vocab) --------------------------------


def _token_table(tokenizer: dict[str, Any], config: dict[str, Any], model_type: str | None):
    model = tokenizer.get("model") or {}
    decoder = tokenizer.get("decoder") or {}
    if model.get("type") != "BPE" or not model.get("byte_fallback", False) or decoder.get("type") != "Sequence":
        raise ConvertError(
            f"{TOKENIZER_JSON} is not a byte-fallback BPE tokenizer with a Sequence decoder "
            "(the Gemma 4 kind); cannot convert its vocabulary"
        )
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not vocab or not all(isinstance(i, int) for i in vocab.values()):
        raise ConvertError(f"{TOKENIZER_JSON} has no valid model.vocab (token -> id)")

    base_size = len(vocab)  # tokenizer.vocab_size: the BPE model alone, without added tokens
    token_to_id: dict[str, int] = dict(vocab)
    id_to_token: dict[int, str] = {i: t for t, i in vocab.items()}
    for added in tokenizer.get("added_tokens") or []:
        valid = isinstance(added, dict) and isinstance(added.get("content"), str) and isinstance(added.get("id"), int)
        if not valid:
            raise ConvertError(f"{TOKENIZER_JSON} has a malformed added_tokens entry: {added!r}")
        token_to_id[added["content"]] = added["id"]
        id_to_token[added["id"]] = added["content"]

    specials = _all_special_tokens(config, model_type)
    # transformers adds special tokens the tokenizer lacks, with fresh ids as `tokenizers` assigns them.
    for text in specials:
        if text not in token_to_id:
            new_id = max(token_to_id.values()) + 1  # tokenizers: after the model vocab and added tokens
            token_to_id[text] = new_id
            id_to_token[new_id] = text
    special_ids = {token_to_id[t] for t in specials}

    tokens: list[bytes] = []
    types: list[int] = []
    for token_id in range(base_size):
        if token_id not in id_to_token:
            raise ConvertError(f"{TOKENIZER_JSON} has no token with id {token_id} (ids must be 0..{base_size - 1})")
        text = id_to_token[token_id].encode("utf-8")
        if _BYTE_TOKEN.fullmatch(text):
            types.append(TokenType.BYTE)
        else:
            types.append(TokenType.CONTROL if token_id in special_ids else TokenType.NORMAL)
        tokens.append(text)

    # Added tokens beyond the BPE vocabulary follow it, in id order.
    extra = sorted((i, t) for t, i in token_to_id.items() if i >= base_size)
    for expected_id, (token_id, text) in enumerate(extra, start=base_size):
        if token_id != expected_id:
            raise ConvertError(f"added token ids in {TOKENIZER_JSON} are not contiguous: {text!r} has id {token_id}")
        tokens.append(text.encode("utf-8"))
        types.append(TokenType.CONTROL if text in specials else TokenType.USER_DEFINED)

    for i, text in enumerate(tokens):
        if text.decode("utf-8") in VISIBLE_TOKENS:
            types[i] = TokenType.USER_DEFINED
    return tokens, [int(t) for t in types]


def _token_text(value: Any) -> str | None:
    """A special token from tokenizer_config.json: a string, or a serialized AddedToken."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _is_added_token_dict(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__type") == "AddedToken" and isinstance(value.get("content"), str)


def _all_special_tokens(config: dict[str, Any], model_type: str | None) -> list[str]:
    """transformers 5.23 `all_special_tokens`: named specials, model-specific `*_token` keys, extras."""
    config = dict(config)
    if "additional_special_tokens" in config and not config.get("extra_special_tokens"):
        config["extra_special_tokens"] = config.pop("additional_special_tokens")

    tokenizer_class = config.get("tokenizer_class")
    gemma_defaults = tokenizer_class in GEMMA_TOKENIZER_CLASSES or (
        tokenizer_class is None and model_type is not None and "gemma" in model_type
    )

    named: dict[str, str | None] = {}
    for key in NAMED_SPECIALS:
        if key in config:
            named[key] = _token_text(config[key])  # an explicit null disables the class default
        elif gemma_defaults:
            named[key] = GEMMA_SPECIAL_DEFAULTS.get(key)

    # Model-specific specials: `from_pretrained` collects plain-string `*_token` keys and a dict-valued
    # extra_special_tokens; `__init__` then collects serialized AddedTokens and puts them first.
    explicit = {
        k: v for k, v in config.items() if k not in NAMED_SPECIALS and k.endswith("_token") and isinstance(v, str)
    }
    extras = config.get("extra_special_tokens")
    if isinstance(extras, dict):
        explicit.update({k: v for k, v in extras.items() if _token_text(v) is not None})
        extras = []
    if not explicit and isinstance(config.get("model_specific_special_tokens"), dict):
        explicit = dict(config["model_specific_special_tokens"])
    auto = {
        k: v for k, v in config.items() if k not in NAMED_SPECIALS and k.endswith("_token") and _is_added_token_dict(v)
    }
    for key, value in {**auto, **explicit}.items():
        named[key] = _token_text(value)

    result: list[str] = []
    for text in list(named.values()) + [_token_text(t) for t in (extras or [])]:
        if text is not None and text not in result:
            result.append(text)
    return result


def _model_type(model_dir: Path) -> str | None:
    path = model_dir / "config.json"
    if not path.is_file():
        return None
    model_type = read_json(path, "the model config").get("model_type")
    return model_type if isinstance(model_type, str) else None


# --- merges, special ids, add flags, chat template (gguf.SpecialVocab) ------------------------


def _merges(model_dir: Path, tokenizer: dict[str, Any]) -> list[str]:
    merges = (tokenizer.get("model") or {}).get("merges")
    if isinstance(merges, list) and merges:
        if all(isinstance(m, str) for m in merges):
            return list(merges)
        if all(isinstance(m, list) and len(m) == 2 and all(isinstance(s, str) for s in m) for m in merges):
            # Pair form (tokenizers >= 0.20). "a b" cannot hold a space inside a part, so spaces are
            # written as U+0120 the way gguf-py does.
            return [" ".join(part.replace(" ", "\u0120") for part in pair) for pair in merges]
        raise ConvertError(f"{TOKENIZER_JSON} has merges in an unknown format")
    return _merges_txt(model_dir / MERGES_TXT)


def _merges_txt(path: Path) -> list[str]:
    if not path.is_file():
        return []
    merges = []
    lines = _read_text(path).splitlines()
    if lines and lines[0].strip().startswith("#"):
        lines = lines[1:]  # a version header
    for line in lines:
        parts = line.strip().split(None, 3)
        if len(parts) == 2:
            merges.append(f"{parts[0]} {parts[1]}")
    return merges


def _special_vocab(model_dir: Path, tokenizer: dict[str, Any], config: dict[str, Any]):
    """Special ids and add-flags exactly as gguf.SpecialVocab derives them."""
    config = dict(config)
    types = list(SPECIAL_TOKEN_TYPES)
    add_flags: dict[str, bool] = {}
    _post_processor_flags(tokenizer, config, types, add_flags)

    special_ids: dict[str, int] = {}
    if config:  # SpecialVocab skips this part when tokenizer_config.json is absent or empty
        added_tokens = tokenizer.get("added_tokens") or []
        for typ in types:
            flag = config.get(f"add_{typ}_token")
            if isinstance(flag, bool):
                add_flags[typ] = flag
            content = _token_text(config.get(f"{typ}_token"))
            if content is None:
                continue
            # SpecialVocab looks only among tokenizer.json's added tokens, first match wins.
            token_id = next((t.get("id") for t in added_tokens if t.get("content") == content), None)
            _set_special_id(special_ids, typ, token_id)

    model_config_path = model_dir / "config.json"
    if model_config_path.is_file():
        model_config = read_json(model_config_path, "the model config")
        text_config = model_config.get("text_config") or {}
        for typ in types:
            token_id = model_config.get(f"{typ}_token_id")
            if token_id is None and "text_config" in model_config:
                token_id = text_config.get(f"{typ}_token_id")
            _set_special_id(special_ids, typ, token_id)
    return special_ids, add_flags


def _set_special_id(special_ids: dict[str, int], typ: str, token_id: Any) -> None:
    if not isinstance(token_id, int) or typ in special_ids:
        return  # lists (eos [1, 106]) and missing ids are skipped; the first source wins
    if token_id < 0:
        raise ConvertError(f"invalid {typ} token id {token_id}")
    special_ids[typ] = token_id


def _special(item: dict[str, Any]) -> str | None:
    return (item.get("SpecialToken") or {}).get("id")


def _sequence(item: dict[str, Any]) -> str | None:
    return (item.get("Sequence") or {}).get("id")


def _post_processor_flags(
    tokenizer: dict[str, Any], config: dict[str, Any], types: list[str], add_flags: dict[str, bool]
) -> None:
    """What SpecialVocab infers from tokenizer.json's post-processor: which specials get added.

    Like SpecialVocab it may also rewrite specials in `config` (cls -> bos, sep -> eos, a trailing
    special -> eos with the old eos kept as eot/eom), since that changes the ids found later.
    The raw tokenizer_config values are compared, as SpecialVocab does.
    """
    has_config = bool(config)
    bos, cls, eos, sep = (config.get(k) for k in ("bos_token", "cls_token", "eos_token", "sep_token"))
    if not bos and cls and has_config:
        config["bos_token"] = bos = cls
    if not eos and sep and has_config:
        config["eos_token"] = eos = sep
    post = tokenizer.get("post_processor")
    if not post:
        return
    for proc in post.get("processors", [post]):
        if proc.get("type") == "RobertaProcessing":
            add_flags.update(bos=True, eos=True, sep=True)
            if not cls and has_config:
                config["cls_token"] = cls = proc.get("cls", [bos])[0]
            if not sep and has_config:
                config["sep_token"] = sep = proc.get("sep", [eos])[0]
        elif proc.get("type") == "TemplateProcessing":
            single, pair = proc.get("single", []), proc.get("pair", [])
            first = last = None
            if len(single) > 1:
                first = _special(single[0])
                if first:
                    if not has_config:
                        bos = first
                    add_flags["bos"] = first in (bos, cls)
                last = _special(single[-1])
                if last:
                    if not has_config:
                        eos = last
                    elif last != eos:
                        for alt in ("eot", "eom"):
                            if alt not in types:
                                types.append(alt)
                                config[f"{alt}_token"] = eos
                                break
                        config["eos_token"] = eos = last
                    add_flags["eos"] = last == eos
            if pair:
                start = 1 if first and _special(pair[0]) == first else 0
                stop = -1 if last and _special(pair[-1]) == last else None
                middle = pair[start:stop]
                if middle and _sequence(middle[0]) == "A" and _sequence(middle[-1]) == "B" and middle[1:-1]:
                    middle = middle[1:-1]
                    entry = _special(middle[0])
                    add_sep = bool(entry and entry in (sep, eos) and not last)
                    if len(middle) == 2 and (second := _special(middle[1])) and second in (sep, eos):
                        add_sep = True
                    add_flags["sep"] = add_sep
                    if add_sep and not sep and has_config:
                        config["sep_token"] = eos


def _chat_template(model_dir: Path, config: dict[str, Any]) -> str | list[dict[str, str]] | None:
    """chat_template.jinja (+ additional_chat_templates/*.jinja), else tokenizer_config.json's
    chat_template, else chat_template.json. transformers gives the .jinja file precedence."""
    jinja = model_dir / CHAT_TEMPLATE_JINJA
    if jinja.is_file():
        template: str | list[dict[str, str]] = _read_text(jinja)
        extra_dir = model_dir / ADDITIONAL_TEMPLATES_DIR
        extra = sorted(extra_dir.glob("*.jinja")) if extra_dir.is_dir() else []
        if extra:
            template = [{"name": "default", "template": template}] + [
                {"name": p.stem, "template": _read_text(p)} for p in extra
            ]
        return template
    template = config.get("chat_template")
    if template is None and (model_dir / CHAT_TEMPLATE_JSON).is_file():
        template = read_json(model_dir / CHAT_TEMPLATE_JSON, "the chat template").get("chat_template")
    if template is None or isinstance(template, (str, list)):
        return template
    raise ConvertError(f"chat_template in {TOKENIZER_CONFIG} is neither a string nor a list")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConvertError(f"cannot read {path}: {e}") from None
