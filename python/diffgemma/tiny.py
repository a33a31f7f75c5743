"""A tiny but complete DiffusionGemma checkpoint, written with numpy and json only.

``write_tiny_checkpoint(out_dir)`` produces the files a transformers 5.23 ``save_pretrained`` of
``DiffusionGemmaForBlockDiffusion`` produces (``config.json``, ``generation_config.json``,
``model.safetensors``) for a small configuration, plus a Gemma-4-style tokenizer
(``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja``).

Nothing here imports torch, transformers, tokenizers or safetensors: the safetensors file, the
BPE vocabulary and merges, and the tokenizer JSON are all built by the code below. The output is a
pure function of the arguments (same arguments, same bytes).

Tokenizer layout (see ``docs/gguf-layout.md`` section 3 of the shared docs): the real Gemma 4
tokenizer.json is a BPE model (byte fallback, ``<0xXX>`` byte tokens, no GPT-2 byte mapping) whose
normalizer replaces every space with U+2581, whose pre-tokenizer is a no-op ``Split(" ",
MergedWithPrevious)`` after that normalizer, whose post-processor adds no BOS (the chat template writes
``<bos>``), and whose decoder is ``Replace(U+2581 -> " "), ByteFallback, Fuse``. Its merges are derived
from a SentencePiece vocabulary the way transformers' ``generate_merges`` does it (every split of a
piece into two vocabulary pieces, ordered by piece score). The tiny vocabulary below is built the same
way from a small embedded corpus, with the Gemma special tokens at their real ids where they fit.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "TINY_VERSION",
    "Gemma4Vocab",
    "build_gemma4_vocab",
    "gemma4_tokenizer_json",
    "gemma4_tokenizer_config",
    "GEMMA4_CHAT_TEMPLATE",
    "write_gemma4_tokenizer_files",
    "float32_to_bfloat16_bits",
    "write_safetensors",
    "tiny_config",
    "tiny_generation_config",
    "tiny_tensor_shapes",
    "tiny_tensors",
    "write_tiny_checkpoint",
]

# Bump whenever the bytes written by write_tiny_checkpoint change (the demo keys its cache on it).
TINY_VERSION = "1"

SPACE = "\u2581"  # "▁", SentencePiece's escaped space

# ---------------------------------------------------------------------------------------------
# Tokenizer: fixed ids
# ---------------------------------------------------------------------------------------------

# Control tokens at the ids the real Gemma 4 vocabulary uses (262144 entries). Kept in a tiny
# vocabulary when the id is below its size.
_FIXED_SPECIAL: Tuple[Tuple[int, str], ...] = (
    (0, "<pad>"),
    (1, "<eos>"),
    (2, "<bos>"),
    (3, "<unk>"),
    (4, "<mask>"),
    (46, "<|tool>"),
    (47, "<tool|>"),
    (48, "<|tool_call>"),
    (49, "<tool_call|>"),
    (50, "<|tool_response>"),
    (51, "<tool_response|>"),
    (52, '<|"|>'),
    (98, "<|think|>"),
    (100, "<|channel>"),
    (101, "<channel|>"),
    (105, "<|turn>"),
    (106, "<turn|>"),
)

# Multimodal markers. Real ids: 255999 <|image>, 256000 <|audio>, 258880 <|image|>, 258881 <|audio|>,
# 258882 <image|>, 258883 <audio|>, 258884 <|video|>. In the tiny vocabulary they keep this order at
# the very top of the id range.
_TOP_SPECIAL: Tuple[str, ...] = (
    "<|image>",
    "<|audio>",
    "<|image|>",
    "<|audio|>",
    "<image|>",
    "<audio|>",
    "<|video|>",
)

# Normal (not "added") tokens the Gemma 3/4 vocabulary has at fixed ids: newline runs from 107
# ("\n" is llama.cpp's LF token), runs of 2+ spaces from 138, HTML tags 168..237 of which only
# "</s>" (212) is kept here, tab runs just below <|image> (255968..255998 in the real vocabulary).
_NEWLINE_RUN_BASE, _NEWLINE_RUN_MAX = 107, 8
_SPACE_RUN_BASE, _SPACE_RUN_MAX = 138, 8  # 138 is two spaces
_TAB_RUN_MAX = 4
_HTML_TOKENS: Tuple[Tuple[int, str], ...] = ((212, "</s>"),)
_BYTE_BASE = 238  # <0x00> .. <0xFF> occupy 238..493 in the real vocabulary

MIN_VOCAB_SIZE = 320


# ---------------------------------------------------------------------------------------------
# Tokenizer: embedded training corpus (original text written for this file)
# ---------------------------------------------------------------------------------------------

_CORPUS = """\
The quick brown fox jumps over the lazy dog. The dog did not mind; it was asleep in the sun.
A diffusion model starts from a canvas of masked tokens and refines the whole canvas at once.
Each step keeps the tokens it is confident about and masks the rest again, until nothing changes.
The encoder reads the prompt and writes the cache; the decoder reads the cache and never writes it.
We tested the engine on the tiny model first, then on the real weights, and the logits matched.
There are three things to check: the tokenizer, the weights, and the order of the layers.
If the answer is not in the context, say that you do not know. Do not make up an answer.
Question: What is the capital of France? Answer: The capital of France is Paris.
Question: How many legs does a spider have? Answer: A spider has eight legs.
She said, "Let's meet at 10:30 on Monday, 12 May 2025." He replied: "OK, see you then!"
Prices rose by 3.5% in 2024; the index went from 1,024 to 1,060 (about +36 points).
Email me at someone@example.com or visit https://example.com/docs/index.html for more.

def softmax(x, axis=-1):
    \"\"\"Return the softmax of x along the given axis.\"\"\"
    m = x.max(axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


class Cache:
    def __init__(self, n_layers, n_heads, head_dim):
        self.keys = [None] * n_layers
        self.values = [None] * n_layers

    def update(self, layer, k, v):
        if self.keys[layer] is None:
            self.keys[layer] = k
        else:
            self.keys[layer] = np.concatenate([self.keys[layer], k], axis=0)
        return self.keys[layer]

for i in range(10):
    print(f"step {i}: loss = {loss:.4f}")

#include <vector>
#include <cstdint>

static float dot(const float* a, const float* b, int n) {
\tfloat s = 0.0f;
\tfor (int i = 0; i < n; ++i) {
\t\ts += a[i] * b[i];
\t}
\treturn s;
}

int main(int argc, char** argv) {
    std::vector<int32_t> ids = {2, 105, 107};
    if (argc < 2) { return 1; }
    return 0;
}

{"role": "user", "content": "Hello, how are you?"}
{"role": "assistant", "content": "I am fine, thank you."}

| name   | value |
|--------|-------|
| alpha  |  0.5  |
| beta   |  1.25 |

Le modèle lit le texte et écrit la réponse. Où est la gare ? Elle est à côté du marché.
Der schnelle braune Fuchs springt über den faulen Hund. Grüße aus München, schöne Straße!
El niño comió una manzana en la mañana. ¿Dónde está la biblioteca? ¡Qué día tan bonito!
O menino não sabe a lição. A canção é muito bonita.
Привет, как дела? Модель читает текст и пишет ответ. Спасибо, всё хорошо.
Γειά σου κόσμε. Το μοντέλο διαβάζει το κείμενο.
你好，世界。模型读取文本并写出答案。今天天气很好，我们去公园散步。
你好！你好吗？我很好，谢谢。世界很大，你好世界。
こんにちは、世界。モデルはテキストを読んで答えを書きます。ありがとう。
안녕하세요, 세계. 모델은 텍스트를 읽고 답을 씁니다. 감사합니다.
नमस्ते दुनिया। मॉडल पाठ पढ़ता है और उत्तर लिखता है।
مرحبا بالعالم. النموذج يقرأ النص ويكتب الإجابة.
שלום עולם. המודל קורא את הטקסט.
สวัสดีชาวโลก ขอบคุณมาก

Emoji: 😀 😂 👍 🎉 ❤️ 🚀 ✨ 🙂 😀 👍 🎉 🚀
Good job 👍 Party 🎉 Launch 🚀 Smile 😀 👍👍 😀😀
Whitespace:  two  spaces,   three   spaces,    four    spaces.
Tabs:\tone\ttab,\t\ttwo tabs.
Lines end here.


Two blank lines above, and three below.



The end. The end. The end.
"""


def _training_words(text: str) -> Counter:
    """Split the (space-escaped) corpus into training words.

    Words never mix newline or tab runs with other characters, a space attaches to the start of the
    following word ("▁word"), extra spaces before a word form their own run, and ASCII digits stand
    alone. This mirrors how SentencePiece cuts Gemma's training text, so no learned piece contains a
    newline next to anything else (which makes llama.cpp's newline-run pre-split a no-op).
    """
    t = text.replace(" ", SPACE)
    pattern = re.compile(
        r"\n+|\t+|[0-9]|" + SPACE + r"?[^" + SPACE + r"\n\t0-9]+|"
        + SPACE + r"+?(?=" + SPACE + r"[^" + SPACE + r"\n\t])|" + SPACE + r"+"
    )
    words: Counter = Counter()
    pos = 0
    for m in pattern.finditer(t):
        if m.start() != pos:  # cannot happen: the alternatives cover every character
            raise AssertionError("training split left a gap")
        words[m.group(0)] += 1
        pos = m.end()
    if pos != len(t):
        raise AssertionError("training split left a gap")
    return words


def _learn_merges(words: Counter, alphabet: Sequence[str], fixed: Sequence[str], n_new: int) -> List[str]:
    """Greedy BPE: repeatedly merge the most frequent adjacent pair (ties: smallest strings).

    Returns up to ``n_new`` new pieces in the order they were learned. Pieces already in the
    vocabulary (``fixed``, e.g. "▁▁") are merged in the words but not counted as new. Symbols not in
    the alphabet are never merged.
    """
    vocab = set(alphabet) | set(fixed)
    seqs = [[list(w), c] for w, c in sorted(words.items())]
    new: List[str] = []
    while len(new) < n_new:
        pairs: Counter = Counter()
        for syms, c in seqs:
            for a, b in zip(syms, syms[1:]):
                if a in vocab and b in vocab:
                    pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merged = best[0] + best[1]
        for item in seqs:
            syms = item[0]
            if len(syms) < 2:
                continue
            out = []
            i = 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == best[0] and syms[i + 1] == best[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            item[0] = out
        if merged not in vocab:
            vocab.add(merged)
            new.append(merged)
    return new


def _generate_merges(pieces: Sequence[str], scores: Dict[str, float], skip: set) -> List[Tuple[str, str]]:
    """Merges from a scored vocabulary, as transformers' ``generate_merges`` builds them for Gemma.

    For every piece (in id order) every split into two vocabulary pieces is a merge; merges are
    ordered by the merged piece's score (descending), then by the lengths of the left and right
    halves (descending); ties keep id order.
    """
    index = {p: i for i, p in enumerate(pieces)}
    merges = []
    for piece in pieces:
        if piece in skip or piece not in scores:
            continue
        local = []
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in skip or right in skip:
                continue
            if left in index and right in index:
                local.append((left, right, scores[piece]))
        local.sort(key=lambda m: (index[m[0]], index[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(m[0], m[1]) for m in merges]


@dataclass(frozen=True)
class Gemma4Vocab:
    """A tiny Gemma-4-style BPE vocabulary: ``tokens[i]`` is the piece with id ``i``."""

    tokens: Tuple[str, ...]
    merges: Tuple[Tuple[str, str], ...]
    special: Tuple[Tuple[int, str], ...]  # the added (special) tokens, by id

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def id_of(self, piece: str) -> int:
        return self.tokens.index(piece)


@lru_cache(maxsize=8)
def build_gemma4_vocab(vocab_size: int = 512) -> Gemma4Vocab:
    """Lay out a tiny Gemma 4 vocabulary of exactly ``vocab_size`` entries.

    Fixed: the control tokens at their real ids (those below ``vocab_size``), newline runs from 107,
    space runs from 138, "</s>" at 212, the multimodal markers and tab runs at the top, the 256 byte
    tokens at 238..493 when they fit there (else at the lowest free ids). Every other id holds a piece
    learned from the embedded corpus: merged pieces in learning order, then single characters by
    frequency (as SentencePiece orders a BPE vocabulary). If the corpus runs out, the rest are
    ``<unusedN>`` like the real vocabulary's spare slots.
    """
    if not isinstance(vocab_size, int) or vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size must be an int >= {MIN_VOCAB_SIZE}, got {vocab_size!r}")
    V = vocab_size
    slots: List[Optional[str]] = [None] * V
    user_defined: List[str] = []  # normal pieces with SentencePiece score 0 (runs, tags)

    def put(i: int, piece: str) -> None:
        if slots[i] is not None:
            raise AssertionError(f"id {i} assigned twice")
        slots[i] = piece

    special: List[Tuple[int, str]] = []
    for i, piece in _FIXED_SPECIAL:
        if i < V:
            put(i, piece)
            special.append((i, piece))
    top = V - len(_TOP_SPECIAL)
    for k, piece in enumerate(_TOP_SPECIAL):
        put(top + k, piece)
        special.append((top + k, piece))
    tab_base = top - _TAB_RUN_MAX
    for k in range(_TAB_RUN_MAX):
        put(tab_base + k, "\t" * (k + 1))
        if k:
            user_defined.append("\t" * (k + 1))
    for k in range(_NEWLINE_RUN_MAX):
        if _NEWLINE_RUN_BASE + k < tab_base:
            put(_NEWLINE_RUN_BASE + k, "\n" * (k + 1))
            if k:
                user_defined.append("\n" * (k + 1))
    for k in range(_SPACE_RUN_MAX - 1):
        if _SPACE_RUN_BASE + k < tab_base:
            put(_SPACE_RUN_BASE + k, SPACE * (k + 2))
            user_defined.append(SPACE * (k + 2))
    for i, piece in _HTML_TOKENS:
        if i < tab_base:
            put(i, piece)
            user_defined.append(piece)
    byte_pieces = [f"<0x{b:02X}>" for b in range(256)]
    if _BYTE_BASE + 256 <= tab_base and all(s is None for s in slots[_BYTE_BASE:_BYTE_BASE + 256]):
        for b, piece in enumerate(byte_pieces):
            put(_BYTE_BASE + b, piece)
    else:
        free = [i for i, s in enumerate(slots) if s is None]
        for i, piece in zip(free, byte_pieces):
            put(i, piece)
    free = [i for i, s in enumerate(slots) if s is None]
    if len(free) < 16:
        raise ValueError(f"vocab_size {V} leaves too few ids for learned pieces")

    # Learned pieces: alphabet (characters the corpus uses at least twice, most frequent first,
    # capped at half the free ids), then merges.
    words = _training_words(_CORPUS)
    chars: Counter = Counter()
    for w, c in words.items():
        for ch in w:
            chars[ch] += c
    present = set(s for s in slots if s is not None)
    ranked = sorted((ch for ch in chars if chars[ch] >= 2 and ch not in present), key=lambda ch: (-chars[ch], ch))
    alphabet = ranked[: len(free) // 2]
    learned = _learn_merges(words, alphabet, sorted(present), len(free) - len(alphabet))
    ordered = learned + alphabet
    n_unused = len(free) - len(ordered)
    ordered += [f"<unused{k}>" for k in range(n_unused)]
    for i, piece in zip(free, ordered):
        put(i, piece)
    tokens = tuple(s for s in slots)  # type: ignore[misc]
    assert all(isinstance(s, str) for s in tokens) and len(set(tokens)) == V

    # SentencePiece-like scores: user-defined pieces 0, learned pieces -1, -2, ... in learning
    # order, single characters below every learned piece. Specials and bytes take part in no merge.
    scores: Dict[str, float] = {p: 0.0 for p in user_defined}
    for k, piece in enumerate(learned):
        scores[piece] = -float(k + 1)
    for k, piece in enumerate(alphabet):
        scores[piece] = -float(len(learned) + 1 + k)
    skip = set(p for _, p in special) | set(byte_pieces) | {f"<unused{k}>" for k in range(n_unused)}
    merges = _generate_merges(tokens, scores, skip)
    return Gemma4Vocab(tokens=tokens, merges=tuple(merges), special=tuple(sorted(special)))


def _added_token(i: int, content: str) -> dict:
    return {
        "id": i,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": True,
    }


def gemma4_tokenizer_json(vocab_size: int = 512) -> dict:
    """The tokenizer.json document (the key order and values ``tokenizers`` serialises)."""
    v = build_gemma4_vocab(vocab_size)
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added_token(i, p) for i, p in v.special],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
        "pre_tokenizer": {
            "type": "Split",
            "pattern": {"String": " "},
            "behavior": "MergedWithPrevious",
            "invert": False,
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": {p: i for i, p in enumerate(v.tokens)},
            "merges": [[a, b] for a, b in v.merges],
        },
    }


def gemma4_tokenizer_config() -> dict:
    """tokenizer_config.json as transformers 5.x writes it for Gemma 4 (GemmaTokenizer with the
    Gemma 4 extra special tokens, no BOS added by the tokenizer: the chat template writes it)."""
    return {
        "audio_token": "<|audio|>",
        "backend": "tokenizers",
        "boa_token": "<|audio>",
        "boi_token": "<|image>",
        "bos_token": "<bos>",
        "eoa_token": "<audio|>",
        "eoc_token": "<channel|>",
        "eoi_token": "<image|>",
        "eos_token": "<eos>",
        "eot_token": "<turn|>",
        "escape_token": '<|"|>',
        "etc_token": "<tool_call|>",
        "etd_token": "<tool|>",
        "etr_token": "<tool_response|>",
        "extra_special_tokens": ["<|video|>"],
        "image_token": "<|image|>",
        "mask_token": "<mask>",
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": "<pad>",
        "padding_side": "left",
        "processor_class": "Gemma4Processor",
        "soc_token": "<|channel>",
        "sot_token": "<|turn>",
        "stc_token": "<|tool_call>",
        "std_token": "<|tool>",
        "str_token": "<|tool_response>",
        "think_token": "<|think|>",
        "tokenizer_class": "GemmaTokenizer",
        "unk_token": "<unk>",
    }


# A small chat template in the Gemma 4 format (bos, optional system turn with <|think|>, turns
# "<|turn>{role}\n...<turn|>\n", assistant thinking stripped, generation prompt "<|turn>model\n").
GEMMA4_CHAT_TEMPLATE = """\
{{- bos_token -}}
{%- set enable_thinking = enable_thinking | default(false) -%}
{%- set loop_messages = messages -%}
{%- if enable_thinking or (messages and messages[0]['role'] in ['system', 'developer']) -%}
    {{- '<|turn>system\\n' -}}
    {%- if enable_thinking -%}
        {{- '<|think|>\\n' -}}
    {%- endif -%}
    {%- if messages and messages[0]['role'] in ['system', 'developer'] -%}
        {{- messages[0]['content'] | trim -}}
        {%- set loop_messages = messages[1:] -%}
    {%- endif -%}
    {{- '<turn|>\\n' -}}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
    {{- '<|turn>' + role + '\\n' -}}
    {%- if message['content'] is string -%}
        {%- set text = message['content'] -%}
        {%- if role == 'model' and '<channel|>' in text -%}
            {%- set text = text.split('<channel|>')[-1] -%}
        {%- endif -%}
        {{- text | trim -}}
    {%- else -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'text' -%}
                {{- item['text'] | trim -}}
            {%- elif item['type'] in ['image', 'image_url'] -%}
                {{- '<|image|>' -}}
            {%- elif item['type'] in ['audio', 'input_audio'] -%}
                {{- '<|audio|>' -}}
            {%- elif item['type'] == 'video' -%}
                {{- '<|video|>' -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{- '<turn|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|turn>model\\n' -}}
{%- endif -%}
"""


def _dump_json(obj: dict, path: Path, *, sort_keys: bool, trailing_newline: bool) -> None:
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=sort_keys)
    if trailing_newline:
        text += "\n"
    path.write_bytes(text.encode("utf-8"))


def write_gemma4_tokenizer_files(out_dir, vocab_size: int = 512) -> None:
    """Write tokenizer.json, tokenizer_config.json and chat_template.jinja (pure Python)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _dump_json(gemma4_tokenizer_json(vocab_size), out / "tokenizer.json", sort_keys=False, trailing_newline=False)
    _dump_json(gemma4_tokenizer_config(), out / "tokenizer_config.json", sort_keys=True, trailing_newline=True)
    (out / "chat_template.jinja").write_bytes(GEMMA4_CHAT_TEMPLATE.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------------------------


def float32_to_bfloat16_bits(a: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) of float32 values, rounded to nearest even; NaN stays NaN."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


_ST_DTYPES = {"float32": ("F32", np.dtype("<f4")), "bfloat16": ("BF16", np.dtype("<u2"))}


def write_safetensors(path, tensors: Dict[str, np.ndarray], dtype: str = "float32",
                      metadata: Optional[Dict[str, str]] = None) -> None:
    """Write float tensors to a .safetensors file in ``dtype`` ("float32" or "bfloat16").

    Layout as the reference implementation writes it: an 8-byte little-endian header length, a
    compact JSON header ("__metadata__" first, then tensors sorted by name) padded with spaces to a
    multiple of 8, then the tensor data back to back in the same order.
    """
    if dtype not in _ST_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_ST_DTYPES)}, got {dtype!r}")
    tag, np_dtype = _ST_DTYPES[dtype]
    header: Dict[str, object] = {"__metadata__": dict(metadata if metadata is not None else {"format": "pt"})}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name], dtype=np.float32)
        data = float32_to_bfloat16_bits(arr) if dtype == "bfloat16" else np.ascontiguousarray(arr)
        raw = data.astype(np_dtype, copy=False).tobytes()
        header[name] = {"dtype": tag, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for raw in blobs:
            f.write(raw)


# ---------------------------------------------------------------------------------------------
# Tiny DiffusionGemma checkpoint
# ---------------------------------------------------------------------------------------------

# Text geometry of model-spec section 10.1: V=512, H=64, 6 layers (5 sliding + 1 full), 4 query
# heads, sliding kv 2 x 16, full kv 1 x 32, 8 experts top-2 of width 24, dense width 96, window 16.
_TEXT = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 96,
    "moe_intermediate_size": 24,
    "num_experts": 8,
    "top_k_experts": 2,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "global_head_dim": 32,
    "num_global_key_value_heads": 1,
    "sliding_window": 16,
    "max_position_embeddings": 262144,
}
_VISION = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "patch_size": 16,
    "pooling_kernel_size": 3,
    "position_embedding_size": 64,
}
_CANVAS_LENGTH = 16


def tiny_config(dtype: str = "float32") -> dict:
    """config.json of the tiny checkpoint, as transformers 5.23 serialises DiffusionGemmaConfig."""
    t = _TEXT
    vocab = build_gemma4_vocab(t["vocab_size"])
    layer_types = ["sliding_attention"] * 5 + ["full_attention"]
    per_layer = {
        str(i): {"head_dim": t["global_head_dim"], "num_key_value_heads": t["num_global_key_value_heads"]}
        for i, lt in enumerate(layer_types)
        if lt == "full_attention"
    }
    text_config = {
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 2,
        "eos_token_id": 1,
        "head_dim": t["head_dim"],
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": t["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": t["intermediate_size"],
        "layer_types": layer_types,
        "max_position_embeddings": t["max_position_embeddings"],
        "model_type": "diffusion_gemma_text",
        "moe_intermediate_size": t["moe_intermediate_size"],
        "num_attention_heads": t["num_attention_heads"],
        "num_experts": t["num_experts"],
        "num_hidden_layers": t["num_hidden_layers"],
        "num_key_value_heads": t["num_key_value_heads"],
        "pad_token_id": 0,
        "per_layer_config": per_layer,
        "rms_norm_eps": 1e-06,
        "rope_parameters": {
            "full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1000000.0, "rope_type": "proportional"},
            "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"},
        },
        "sliding_window": t["sliding_window"],
        "tie_word_embeddings": True,
        "top_k_experts": t["top_k_experts"],
        "use_bidirectional_attention": "vision",
        "vocab_size": t["vocab_size"],
    }
    v = _VISION
    vision_config = {
        "attention_bias": False,
        "attention_dropout": 0.0,
        "head_dim": v["head_dim"],
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": v["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": v["intermediate_size"],
        "max_position_embeddings": 131072,
        "model_type": "gemma4_vision",
        "num_attention_heads": v["num_attention_heads"],
        "num_hidden_layers": v["num_hidden_layers"],
        "num_key_value_heads": v["num_key_value_heads"],
        "patch_size": v["patch_size"],
        "pooling_kernel_size": v["pooling_kernel_size"],
        "position_embedding_size": v["position_embedding_size"],
        "rms_norm_eps": 1e-06,
        "rope_parameters": {"rope_theta": 100.0, "rope_type": "axial"},
        "standardize": True,
        "use_clipped_linears": False,
    }
    return {
        "architectures": ["DiffusionGemmaForBlockDiffusion"],
        "boi_token_id": vocab.id_of("<|image>"),
        "canvas_length": _CANVAS_LENGTH,
        "dtype": dtype,
        "eoi_token_id": vocab.id_of("<image|>"),
        "eos_token_id": [1, 106],
        "image_token_id": vocab.id_of("<|image|>"),
        "initializer_range": 0.02,
        "model_type": "diffusion_gemma",
        "text_config": text_config,
        "tie_word_embeddings": True,
        "transformers_version": "5.23.0",
        "vision_config": vision_config,
    }


def tiny_generation_config() -> dict:
    """generation_config.json with the release values (model-spec section 1.1)."""
    return {
        "confidence_threshold": 0.005,
        "eos_token_id": [1, 106, 50],
        "max_denoising_steps": 48,
        "max_new_tokens": 256,
        "pad_token_id": 0,
        "sampler_config": {"_cls_name": "EntropyBoundSamplerConfig", "entropy_bound": 0.1},
        "stability_threshold": 1,
        "t_max": 0.8,
        "t_min": 0.4,
        "transformers_version": "5.23.0",
    }


def tiny_tensor_shapes(config: Optional[dict] = None) -> Dict[str, Tuple[int, ...]]:
    """Name -> shape of every tensor a save_pretrained of this config writes (tied ones once)."""
    cfg = config if config is not None else tiny_config()
    t, v = cfg["text_config"], cfg["vision_config"]
    H, V, F = t["hidden_size"], t["vocab_size"], t["intermediate_size"]
    E, I, nh = t["num_experts"], t["moe_intermediate_size"], t["num_attention_heads"]
    shapes: Dict[str, Tuple[int, ...]] = {}
    d = "model.decoder."
    shapes[d + "embed_tokens.weight"] = (V, H)
    shapes[d + "norm.weight"] = (H,)
    shapes[d + "self_conditioning.pre_norm.weight"] = (H,)
    shapes[d + "self_conditioning.gate_proj.weight"] = (F, H)
    shapes[d + "self_conditioning.up_proj.weight"] = (F, H)
    shapes[d + "self_conditioning.down_proj.weight"] = (H, F)
    for L, lt in enumerate(t["layer_types"]):
        over = t.get("per_layer_config", {}).get(str(L), {})
        hd = over.get("head_dim", t["head_dim"])
        nkv = over.get("num_key_value_heads", t["num_key_value_heads"])
        p = f"{d}layers.{L}."
        shapes[p + "self_attn.q_proj.weight"] = (nh * hd, H)
        shapes[p + "self_attn.k_proj.weight"] = (nkv * hd, H)
        if lt == "sliding_attention":  # full-attention layers use K as V: no v_proj
            shapes[p + "self_attn.v_proj.weight"] = (nkv * hd, H)
        shapes[p + "self_attn.o_proj.weight"] = (H, nh * hd)
        shapes[p + "self_attn.q_norm.weight"] = (hd,)
        shapes[p + "self_attn.k_norm.weight"] = (hd,)
        shapes[p + "mlp.gate_proj.weight"] = (F, H)
        shapes[p + "mlp.up_proj.weight"] = (F, H)
        shapes[p + "mlp.down_proj.weight"] = (H, F)
        shapes[p + "router.proj.weight"] = (E, H)
        shapes[p + "router.scale"] = (H,)
        shapes[p + "router.per_expert_scale"] = (E,)
        shapes[p + "experts.gate_up_proj"] = (E, 2 * I, H)
        shapes[p + "experts.down_proj"] = (E, H, I)
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm", "post_feedforward_layernorm_1",
                  "post_feedforward_layernorm_2", "pre_feedforward_layernorm_2"):
            shapes[p + n + ".weight"] = (H,)
        shapes[p + "layer_scalar"] = (1,)
        shapes[f"model.encoder.language_model.layers.{L}.layer_scalar"] = (1,)
    vh, vi, vhd = v["hidden_size"], v["intermediate_size"], v["head_dim"]
    vnh, vnkv = v["num_attention_heads"], v["num_key_value_heads"]
    shapes["model.encoder.embed_vision.embedding_projection.weight"] = (H, vh)
    vt = "model.encoder.vision_tower."
    shapes[vt + "patch_embedder.input_proj.weight"] = (vh, 3 * v["patch_size"] ** 2)
    shapes[vt + "patch_embedder.position_embedding_table"] = (2, v["position_embedding_size"], vh)
    if v.get("standardize"):
        shapes[vt + "std_bias"] = (vh,)
        shapes[vt + "std_scale"] = (vh,)
    for L in range(v["num_hidden_layers"]):
        p = f"{vt}encoder.layers.{L}."
        shapes[p + "self_attn.q_proj.linear.weight"] = (vnh * vhd, vh)
        shapes[p + "self_attn.k_proj.linear.weight"] = (vnkv * vhd, vh)
        shapes[p + "self_attn.v_proj.linear.weight"] = (vnkv * vhd, vh)
        shapes[p + "self_attn.o_proj.linear.weight"] = (vh, vnh * vhd)
        shapes[p + "self_attn.q_norm.weight"] = (vhd,)
        shapes[p + "self_attn.k_norm.weight"] = (vhd,)
        shapes[p + "mlp.gate_proj.linear.weight"] = (vi, vh)
        shapes[p + "mlp.up_proj.linear.weight"] = (vi, vh)
        shapes[p + "mlp.down_proj.linear.weight"] = (vh, vi)
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            shapes[p + n + ".weight"] = (vh,)
    return dict(sorted(shapes.items()))


def _init_value(name: str, shape: Tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Values of realistic scale for one tensor (float32)."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "layer_scalar":
        return rng.uniform(0.4, 0.6, size=shape)  # trained Gemma 4 layer scalars are O(0.5)
    if name.endswith(("router.scale", "router.per_expert_scale", "std_scale")):
        return 1.0 + 0.1 * rng.standard_normal(shape)
    if name.endswith("std_bias"):
        return 0.02 * rng.standard_normal(shape)
    if len(shape) == 1:  # every other 1-D tensor is an RMSNorm weight (x * w): around 1
        return 1.0 + 0.1 * rng.standard_normal(shape)
    return 0.02 * rng.standard_normal(shape)  # matrices, experts, embeddings, position table


def tiny_tensors(seed: int = 0, config: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """All tensors of the tiny checkpoint in float32. Each tensor draws from its own generator
    seeded by (seed, crc32(name)), so values do not depend on the order of the list."""
    out = {}
    for name, shape in tiny_tensor_shapes(config).items():
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])
        out[name] = _init_value(name, shape, rng).astype(np.float32)
    return out


def write_tiny_checkpoint(out_dir, seed: int = 0, *, dtype: str = "float32") -> Path:
    """Write the tiny DiffusionGemma checkpoint directory and return its path.

    Files: config.json, generation_config.json, model.safetensors (``dtype`` "float32" or
    "bfloat16"), tokenizer.json, tokenizer_config.json, chat_template.jinja.
    """
    if dtype not in _ST_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = tiny_config(dtype)
    _dump_json(config, out / "config.json", sort_keys=True, trailing_newline=True)
    _dump_json(tiny_generation_config(), out / "generation_config.json", sort_keys=True, trailing_newline=True)
    write_safetensors(out / "model.safetensors", tiny_tensors(seed, config), dtype=dtype)
    write_gemma4_tokenizer_files(out, config["text_config"]["vocab_size"])
    return out
