"""The tiny Gemma 4 tokenizer fixture (tests/fixtures/tokenizer.py) against tokenizers and transformers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

tokenizers = pytest.importorskip("tokenizers")

from fixtures.tokenizer import trl_chat_template_path, write_gemma4_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SP = "\u2581"

# Ids the real Gemma 4 vocabulary uses, kept by the fixture.
REAL_IDS = {
    "<pad>": 0,
    "<eos>": 1,
    "<bos>": 2,
    "<unk>": 3,
    "<mask>": 4,
    "<|tool>": 46,
    "<tool|>": 47,
    "<|tool_call>": 48,
    "<tool_call|>": 49,
    "<|tool_response>": 50,
    "<tool_response|>": 51,
    '<|"|>': 52,
    "<|think|>": 98,
    "<|channel>": 100,
    "<channel|>": 101,
    "<|turn>": 105,
    "<turn|>": 106,
    "\n": 107,
    "\n\n": 108,
    "\n\n\n": 109,
    SP * 2: 138,
    "</s>": 212,
}
CONTROL = [t for t in REAL_IDS if t.startswith("<") and t != "</s>"] + [
    "<|image>", "<|audio>", "<|image|>", "<|audio|>", "<image|>", "<audio|>", "<|video|>",
]

ROUND_TRIP = [
    "Hello world",
    "a  b   c    d",
    "  leading and trailing  ",
    "line one\nline two\n\n\nline five\n",
    "\n\n\n\n\n\n\n\n\n\n\n\n",
    "\tdef f(x):\n\t\treturn x  # tab\tinside",
    "    indented = [1, 2, 3]\n        more",
    "emoji 😀👍🎉 and unknown ones 🫩🦩",
    "你好，世界。こんにちは 안녕하세요",
    "Привет, мир! Γειά σου κόσμε. नमस्ते",
    "rare: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ꙮ \u0000 \x7f ﷽",
    "<bos><|turn>user\nHi there<turn|>\n<|turn>model\n<|channel>thought\n<channel|>OK",
    'call <|tool_call>call:f{a:<|"|>x<|"|>}<tool_call|> then <|tool_response>',
    "<|image|><|audio|><|video|> text </s> <s> <unk>",
    "digits 0123456789 and 3.14159",
    "",
]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gemma4_tok")
    write_gemma4_tokenizer(d)
    return d


@pytest.fixture(scope="module")
def tok(tok_dir):
    return tokenizers.Tokenizer.from_file(str(tok_dir / "tokenizer.json"))


@pytest.fixture(scope="module")
def hf_tok(tok_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(tok_dir))


def test_files_written(tok_dir):
    assert sorted(p.name for p in tok_dir.iterdir()) == ["chat_template.jinja", "tokenizer.json", "tokenizer_config.json"]


def test_vocab_size_and_ids(tok):
    vocab = tok.get_vocab(with_added_tokens=True)
    assert len(vocab) == 512
    assert tok.get_vocab_size(with_added_tokens=True) == 512
    assert sorted(vocab.values()) == list(range(512))
    for piece, i in REAL_IDS.items():
        assert tok.token_to_id(piece) == i, piece
        assert tok.id_to_token(i) == piece
    # multimodal markers keep their real relative order at the top of the vocabulary
    assert [tok.id_to_token(i) for i in range(505, 512)] == [
        "<|image>", "<|audio>", "<|image|>", "<|audio|>", "<image|>", "<audio|>", "<|video|>"]
    # byte tokens at their real ids 238..493
    assert [tok.id_to_token(238 + b) for b in (0, 0x41, 0xFF)] == ["<0x00>", "<0x41>", "<0xFF>"]
    assert all(tok.id_to_token(238 + b) == f"<0x{b:02X}>" for b in range(256))


def test_json_structure(tok_dir):
    d = json.loads((tok_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert d["normalizer"] == {"type": "Replace", "pattern": {"String": " "}, "content": SP}
    assert d["pre_tokenizer"] == {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False}
    assert d["post_processor"]["type"] == "TemplateProcessing"
    assert d["post_processor"]["single"] == [{"Sequence": {"id": "A", "type_id": 0}}]
    assert d["post_processor"]["special_tokens"] == {}
    assert d["decoder"] == {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": SP}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]}
    m = d["model"]
    assert (m["type"], m["byte_fallback"], m["fuse_unk"], m["unk_token"], m["ignore_merges"]) == ("BPE", True, True, "<unk>", False)
    assert m["continuing_subword_prefix"] is None and m["end_of_word_suffix"] is None and m["dropout"] is None
    assert len(m["vocab"]) == 512
    # no GPT-2 byte alphabet: spaces are U+2581 and bytes are <0xXX>
    assert not any(("\u0120" in p or "\u010a" in p) for p in m["vocab"])
    # merges: pairs of vocabulary pieces whose concatenation is a vocabulary piece; no merge joins a
    # newline with anything else (so llama.cpp's newline-run pre-split changes nothing)
    assert len(m["merges"]) > 100
    for a, b in m["merges"]:
        assert a in m["vocab"] and b in m["vocab"] and a + b in m["vocab"]
        assert ("\n" in a + b) == ((a + b).strip("\n") == "")
    assert [SP, SP] in m["merges"] and ["\n", "\n"] in m["merges"]
    added = {t["content"]: t for t in d["added_tokens"]}
    assert sorted(added) == sorted(CONTROL)
    for t in added.values():
        assert t["special"] is True and t["normalized"] is False and not t["lstrip"] and not t["rstrip"]
        assert m["vocab"][t["content"]] == t["id"]
    assert "\n" not in added and "</s>" not in added  # normal vocabulary pieces, as in the real file


def test_matches_transformers_gemma_tokenizer_pipeline(tok_dir):
    """The real file comes from transformers' GemmaTokenizer(vocab, merges, add_bos_token=False,
    extra_special_tokens=...): building that from our vocabulary gives the same pipeline."""
    pytest.importorskip("transformers")
    from transformers.models.gemma.tokenization_gemma import GemmaTokenizer

    d = json.loads((tok_dir / "tokenizer.json").read_text(encoding="utf-8"))
    cfg = json.loads((tok_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    extra = {k: v for k, v in cfg.items() if k.endswith("_token") and k not in (
        "bos_token", "eos_token", "unk_token", "pad_token", "mask_token")}
    ref = GemmaTokenizer(vocab=d["model"]["vocab"], merges=[tuple(m) for m in d["model"]["merges"]],
                         add_bos_token=False, padding_side="left", extra_special_tokens=extra)
    ref.add_special_tokens({"additional_special_tokens": ["<|video|>"]})
    r = json.loads(ref._tokenizer.to_str())
    for key in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
        assert d[key] == r[key], key
    assert {k: v for k, v in d["model"].items() if k != "merges"} == {k: v for k, v in r["model"].items() if k != "merges"}
    assert d["model"]["merges"] == r["model"]["merges"]
    assert d["added_tokens"] == r["added_tokens"]
    for text in ROUND_TRIP:
        assert ref._tokenizer.encode(text).ids == tokenizers.Tokenizer.from_str(json.dumps(d)).encode(text).ids


def test_tokenizer_config(tok_dir):
    cfg = json.loads((tok_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert (cfg["bos_token"], cfg["eos_token"], cfg["unk_token"], cfg["pad_token"], cfg["mask_token"]) == (
        "<bos>", "<eos>", "<unk>", "<pad>", "<mask>")
    assert cfg["tokenizer_class"] == "GemmaTokenizer" and cfg["backend"] == "tokenizers"
    assert cfg["model_max_length"] == 1000000000000000019884624838656
    assert cfg["extra_special_tokens"] == ["<|video|>"]
    assert (cfg["sot_token"], cfg["eot_token"], cfg["soc_token"], cfg["eoc_token"]) == ("<|turn>", "<turn|>", "<|channel>", "<channel|>")
    assert (cfg["str_token"], cfg["etr_token"], cfg["escape_token"], cfg["think_token"]) == (
        "<|tool_response>", "<tool_response|>", '<|"|>', "<|think|>")


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(tok, text):
    enc = tok.encode(text)
    assert tok.decode(enc.ids, skip_special_tokens=False) == text
    assert all(0 <= i < 512 for i in enc.ids)
    assert 2 not in enc.ids or "<bos>" in text  # the tokenizer adds no BOS


def test_specific_encodings(tok):
    def ids(s):
        return tok.encode(s).ids

    assert ids("\n") == [107] and ids("\n\n") == [108] and ids("\n\n\n") == [109]
    assert ids(" ") == [tok.token_to_id(SP)]
    assert 138 in ids("a  b")  # "▁▁" run token
    assert ids("<|turn>user\n")[0] == 105 and ids("<|turn>user\n")[-1] == 107
    assert ids("<turn|>\n") == [106, 107]
    assert ids('<|"|><|tool_response><|think|>') == [52, 50, 98]
    # byte fallback: a character that is not in the vocabulary becomes its UTF-8 bytes
    assert ids("\U0001fae9") == [238 + b for b in "\U0001fae9".encode("utf-8")]
    assert ids("ꙮ") == [238 + b for b in "ꙮ".encode("utf-8")]
    # characters the corpus uses often are whole tokens
    for ch in ("你", "好", "😀", "👍", "é"):
        assert len(ids(ch)) == 1 and ids(ch)[0] < 512 and not 238 <= ids(ch)[0] < 494, ch
    # a literal "▁" is the space piece and decodes to a space (the one lossy case of this design)
    assert tok.decode(ids(SP)) == " "


def test_newline_run_presplit_is_equivalent(tok):
    """llama.cpp pre-splits gemma4 text with [^\\n]+|[\\n]+; the HF pipeline does not. Same ids."""
    for text in ROUND_TRIP:
        if "<" in text:
            continue
        pieces = re.findall(r"[^\n]+|\n+", text)
        split_ids = [i for p in pieces for i in tok.encode(p).ids]
        assert tok.encode(text).ids == split_ids, text


def test_transformers_auto_tokenizer(tok, hf_tok):
    assert type(hf_tok).__name__ == "GemmaTokenizer"
    assert (hf_tok.pad_token_id, hf_tok.eos_token_id, hf_tok.bos_token_id, hf_tok.unk_token_id, hf_tok.mask_token_id) == (0, 1, 2, 3, 4)
    assert len(hf_tok) == 512
    assert hf_tok.image_token_id == 507 and hf_tok.convert_tokens_to_ids(hf_tok.boi_token) == 505
    for piece in CONTROL:
        assert hf_tok.convert_tokens_to_ids(piece) == tok.token_to_id(piece)
    for text in ROUND_TRIP:
        ids = hf_tok(text, add_special_tokens=True)["input_ids"]
        assert ids == tok.encode(text).ids, text
        assert hf_tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False) == text


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "Bye"},
]


def test_apply_chat_template(hf_tok, tok):
    text = hf_tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<bos><|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n"
        "<|turn>model\nHello<turn|>\n<|turn>user\nBye<turn|>\n<|turn>model\n"
    )
    thinking = hf_tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True, enable_thinking=True)
    assert thinking.startswith("<bos><|turn>system\n<|think|>\nBe brief.<turn|>\n")
    out = hf_tok.apply_chat_template(MESSAGES, tokenize=True, add_generation_prompt=True)
    ids = out["input_ids"] if not isinstance(out, list) else out
    assert ids[:2] == [2, 105]
    assert ids == tok.encode(text).ids
    assert ids.count(105) == 5 and ids.count(106) == 4 and ids.count(2) == 1
    last_turn = len(ids) - 1 - ids[::-1].index(105)
    assert ids[-1] == 107 and tok.decode(ids[last_turn + 1:-1]) == "model"


def test_chat_template_source(tok_dir):
    from diffgemma.tiny import GEMMA4_CHAT_TEMPLATE

    got = (tok_dir / "chat_template.jinja").read_bytes()
    trl = trl_chat_template_path()
    if trl is not None:
        assert got == trl.read_bytes()
    else:
        assert got == GEMMA4_CHAT_TEMPLATE.encode("utf-8")


def test_deterministic_across_processes(tok_dir, tmp_path):
    """Same bytes from a fresh interpreter with a different hash seed."""
    env = dict(os.environ, PYTHONHASHSEED="12345")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), str(ROOT / "tests")] + [p for p in [env.get("PYTHONPATH")] if p])
    code = "import sys; from fixtures.tokenizer import write_gemma4_tokenizer; write_gemma4_tokenizer(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env, cwd=str(ROOT))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (tmp_path / name).read_bytes() == (tok_dir / name).read_bytes(), name


@pytest.mark.parametrize("vocab_size", [320, 1000, 2048])
def test_other_vocab_sizes(tmp_path, vocab_size):
    write_gemma4_tokenizer(tmp_path, vocab_size=vocab_size)
    t = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    vocab = t.get_vocab(with_added_tokens=True)
    assert len(vocab) == vocab_size and sorted(vocab.values()) == list(range(vocab_size))
    for piece, i in REAL_IDS.items():
        assert t.token_to_id(piece) == i, piece
    assert t.id_to_token(vocab_size - 1) == "<|video|>"
    for text in ROUND_TRIP:
        assert t.decode(t.encode(text).ids, skip_special_tokens=False) == text


def test_too_small_vocab_rejected(tmp_path):
    with pytest.raises(ValueError):
        write_gemma4_tokenizer(tmp_path, vocab_size=200)
