"""Shared pieces of the tokenizer tests: tokenizer-only GGUFs made by our converter's vocabulary code
from the gemma4 fixture tokenizer, and a deterministic corpus of test strings."""

from __future__ import annotations

import random
from pathlib import Path

SPACE = "\u2581"


def write_tokenizer_gguf(tok_dir: Path, out: Path) -> Path:
    """A GGUF holding only the tokenizer metadata, written exactly as our converter writes it
    (`diffgemma.convert.hf_vocab.load_vocab` + the converter's vocabulary KVs), no tensors."""
    from gguf import GGUFValue, GGUFWriter

    from diffgemma.convert.hf_vocab import load_vocab
    from diffgemma.convert.metadata import KVList, _add_vocab

    kv = KVList()
    _add_vocab(kv, load_vocab(Path(tok_dir)))
    writer = GGUFWriter(None, "diffusion-gemma")
    for item in kv:
        writer.kv_data[0][item.key] = GGUFValue(item.value, item.type, item.sub_type)
    writer.open_output_file(Path(out))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    return Path(out)


# ---- corpus ------------------------------------------------------------------------------------

SPECIAL_STRINGS = [
    "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<|turn>", "<turn|>", "<|channel>", "<channel|>",
    "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", '<|"|>', "<|think|>", "<|tool>",
    "<tool|>", "<|image|>", "<|image>", "<image|>", "<|audio|>", "<|video|>", "</s>", "<s>",
    # near misses and pieces of special tokens
    "<|turn", "turn|>", "<|", "|>", "<<|turn>>", "<|turn|>", "<0x41>", "<unused3>", "<table>",
]
WORDS = (
    "the quick brown fox jumps over a lazy dog model token canvas diffusion entropy bound sampler "
    "Hello World Python function return value import numpy as np class def self lambda It's don't "
    "HOW's 1234 3.14159 e.g. U.S.A. naïve résumé"
).split()
SCRIPTS = [
    "Привет, мир! Как дела?", "Γειά σου κόσμε", "नमस्ते दुनिया", "你好，世界。今天天气很好", "こんにちは世界、カタカナ",
    "안녕하세요 세계", "مرحبا بالعالم", "שלום עולם", "สวัสดีชาวโลก", "Xin chào thế giới", "Ḽơᶉëᶆ ȋṕšᶙṁ",
    "ሰላም ዓለም", "Բարեւ աշխարհ", "გამარჯობა", "ওহে বিশ্ব", "வணக்கம் உலகம்", "Café déjà vu — naïve façade",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ꙮ ﷽", "Ελληνικά και русский and English",
]
EMOJI = ["😀", "👍", "🎉", "🫩", "🦩", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷", "👋🏽", "✨", "🤔➡️🌱", "🗽⃢⃢🗿"]
CODE = [
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "if __name__ == '__main__':\n    main()",
    "SELECT * FROM t WHERE id = 42;",
    '<div class="x">&amp;</div>',
    "x = {'a': [1, 2, 3], \"b\": None}",
    '#include <stdio.h>\nint main(){printf("%d\\n",1);}',
    "    indented = [1, 2, 3]\n        more\n\t\ttabs\n",
]
WHITESPACE = [
    " ", "  ", "   ", "    ", "        ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", " \n ", "\n \n",
    "\u3000", "\xa0", "\u2009", SPACE, SPACE * 2, "\x0b", "\x0c",
]


def random_codepoint(rng: random.Random) -> str:
    """A random code point from the whole range, never a surrogate."""
    while True:
        r = rng.random()
        if r < 0.4:
            cp = rng.randint(0x20, 0x7E)
        elif r < 0.45:
            cp = rng.randint(0x00, 0x1F)
        elif r < 0.7:
            cp = rng.randint(0x80, 0x7FF)
        elif r < 0.9:
            cp = rng.randint(0x800, 0xFFFF)
        else:
            cp = rng.randint(0x10000, 0x10FFFF)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def make_corpus(n: int, seed: int = 1234) -> list[str]:
    """n strings cycling through English, code, scripts, emoji, whitespace runs, random code
    points, special-token strings inside text, and mixtures of all of them."""
    rng = random.Random(seed)
    out: list[str] = []
    kinds = ["english", "code", "script", "emoji", "ws", "random", "special", "mixed"]
    for i in range(n):
        kind = kinds[i % len(kinds)]
        if kind == "english":
            s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 25)))
            if rng.random() < 0.5:
                s = s.capitalize() + rng.choice([".", "!", "?", ",", "", "\n"])
        elif kind == "code":
            s = "".join(rng.choice(CODE) for _ in range(rng.randint(1, 3)))
        elif kind == "script":
            s = rng.choice(SCRIPTS) + rng.choice(["", " ", "\n", "  "]) + rng.choice(SCRIPTS)
        elif kind == "emoji":
            s = "".join(rng.choice(EMOJI + [" ", "a", "\n"]) for _ in range(rng.randint(1, 12)))
        elif kind == "ws":
            s = "".join(rng.choice(WHITESPACE + ["x", "ab", "."]) for _ in range(rng.randint(1, 20)))
        elif kind == "random":
            s = "".join(random_codepoint(rng) for _ in range(rng.randint(1, 40)))
        elif kind == "special":
            s = "".join(
                rng.choice(SPECIAL_STRINGS) if rng.random() < 0.5 else rng.choice(WORDS + WHITESPACE)
                for _ in range(rng.randint(1, 10))
            )
        else:
            pool = WORDS + SCRIPTS + EMOJI + WHITESPACE + SPECIAL_STRINGS + CODE
            s = "".join(
                rng.choice(pool) if rng.random() < 0.8 else random_codepoint(rng) for _ in range(rng.randint(1, 14))
            )
        out.append(s)
    # fixed edge cases
    out += ["", " ", "\n", SPACE, "\n" * 40, " " * 40, "\t" * 9, "a" * 500, "<bos>" * 3, "<|turn><turn|>",
            "\x00", "\U0010ffff", "\ufeffBOM", "e\u0301", "ﬁ ligature"]
    return out


def core():
    """diffgemma._core, the compiled module of the installed package."""
    from diffgemma import _core

    return _core


def write_gemma4_scale_gguf(backend, out: Path) -> Path:
    """A `gemma4` tokenizer GGUF at the real scale: the 262,144-token Gemma vocabulary and the
    514,906 ranked merges of `backend` (a `tokenizers.Tokenizer`, here transformers' rebuild of the
    Gemma 3 GGUF's vocabulary, which has exactly as many merges as DiffusionGemma's file). Added
    tokens become CONTROL (special) or USER_DEFINED (not special), byte tokens BYTE."""
    import json
    import re

    from gguf import GGUFWriter

    doc = json.loads(backend.to_str())
    vocab, merges = doc["model"]["vocab"], doc["model"]["merges"]
    tokens = [""] * len(vocab)
    for piece, i in vocab.items():
        tokens[i] = piece
    types = [1] * len(tokens)
    for added in doc["added_tokens"]:
        types[added["id"]] = 3 if added["special"] else 4
    for i, piece in enumerate(tokens):
        if re.fullmatch(r"<0x[0-9A-F]{2}>", piece):
            types[i] = 6
    w = GGUFWriter(str(out), "diffusion-gemma")
    w.add_string("tokenizer.ggml.model", "gemma4")
    w.add_array("tokenizer.ggml.tokens", tokens)
    w.add_array("tokenizer.ggml.token_type", types)
    w.add_array("tokenizer.ggml.merges", [" ".join(m) if isinstance(m, list) else m for m in merges])
    w.add_uint32("tokenizer.ggml.bos_token_id", 2)
    w.add_uint32("tokenizer.ggml.eos_token_id", 1)
    w.add_uint32("tokenizer.ggml.unknown_token_id", 3)
    w.add_uint32("tokenizer.ggml.padding_token_id", 0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    return Path(out)
