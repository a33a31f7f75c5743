"""Our transformers-free vocabulary reader against gguf-py's own (which uses transformers), on the
fixture tokenizer and on variants of it that exercise the special-token rules of transformers 5.23
(class defaults, model-specific `*_token` keys, extra specials, tokens missing from the vocab) and
of gguf.SpecialVocab (post-processor flags, merges formats)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf")
pytest.importorskip("transformers")

from diffgemma.convert.hf_vocab import VISIBLE_TOKENS, load_vocab  # noqa: E402

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "config.json")


@pytest.fixture
def tok_dir(tiny_checkpoint, tmp_path) -> Path:
    """The tiny checkpoint's tokenizer and config, without weights, in a writable directory."""
    src = tiny_checkpoint("tiny")
    for name in TOKENIZER_FILES:
        shutil.copy(src / name, tmp_path / name)
    return tmp_path


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def assert_matches_gguf_py(model_dir: Path, check_template: bool = True):
    ours = load_vocab(model_dir)

    vocab = gguf.LlamaHfVocab(model_dir)
    tokens, scores, types = [], [], []
    for text, score, toktype in vocab.all_tokens():
        tokens.append(text)
        scores.append(score)
        types.append(int(gguf.TokenType.USER_DEFINED) if text.decode() in VISIBLE_TOKENS else int(toktype))
    assert ours.tokens == tokens
    assert ours.scores == scores
    assert ours.token_types == types

    special = gguf.SpecialVocab(model_dir, load_merges=True)
    assert ours.merges == special.merges
    assert ours.special_token_ids == special.special_token_ids
    assert list(ours.special_token_ids) == list(special.special_token_ids)  # GGUF key order
    assert ours.add_special_token == special.add_special_token
    if check_template:
        assert ours.chat_template == special.chat_template
    return ours


def test_fixture_tokenizer(tok_dir):
    ours = assert_matches_gguf_py(tok_dir)
    assert len(ours.tokens) == 512


def test_missing_mask_token_uses_the_gemma_class_default(tok_dir):
    edit_json(tok_dir / "tokenizer_config.json", lambda c: c.pop("mask_token"))
    ours = assert_matches_gguf_py(tok_dir)
    assert ours.token_types[4] == gguf.TokenType.CONTROL and "mask" not in ours.special_token_ids


def test_null_special_token_is_not_special(tok_dir):
    edit_json(tok_dir / "tokenizer_config.json", lambda c: c.update(mask_token=None))
    assert assert_matches_gguf_py(tok_dir).token_types[4] == gguf.TokenType.NORMAL


def test_special_tokens_missing_from_the_vocab_are_appended(tok_dir):
    def edit(c):
        c["extra_special_tokens"] = ["<|video|>", "<|brand_new|>"]
        c["weird_token"] = "<|another_new|>"

    edit_json(tok_dir / "tokenizer_config.json", edit)
    ours = assert_matches_gguf_py(tok_dir)
    # named and model-specific specials first, then the extras (transformers' all_special_tokens order)
    assert ours.tokens[512:] == [b"<|another_new|>", b"<|brand_new|>"]
    assert ours.token_types[512:] == [gguf.TokenType.CONTROL] * 2


def test_legacy_additional_special_tokens_and_added_token_dicts(tok_dir):
    def edit(c):
        c["additional_special_tokens"] = c.pop("extra_special_tokens") + ["he"]
        c["soc_token"] = {"__type": "AddedToken", "content": "<|channel>", "special": True}
        c["bos_token"] = {"__type": "AddedToken", "content": "<bos>", "special": True}

    edit_json(tok_dir / "tokenizer_config.json", edit)
    ours = assert_matches_gguf_py(tok_dir)
    assert ours.token_types[ours.tokens.index(b"he")] == gguf.TokenType.CONTROL


def test_string_merges(tok_dir):
    def edit(t):
        t["model"]["merges"] = [" ".join(m) for m in t["model"]["merges"]]

    edit_json(tok_dir / "tokenizer.json", edit)
    assert_matches_gguf_py(tok_dir)


def test_bos_post_processor_sets_add_flags(tok_dir):
    def edit(t):
        bos = {"SpecialToken": {"id": "<bos>", "type_id": 0}}
        a, b = {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}
        t["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [bos, a],
            "pair": [bos, a, {"SpecialToken": {"id": "<eos>", "type_id": 1}}, b],
            "special_tokens": {
                "<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]},
                "<eos>": {"id": "<eos>", "ids": [1], "tokens": ["<eos>"]},
            },
        }

    edit_json(tok_dir / "tokenizer.json", edit)
    ours = assert_matches_gguf_py(tok_dir)
    assert ours.add_special_token == {"bos": True, "sep": True}


def test_trailing_special_in_post_processor_becomes_eos(tok_dir):
    def edit(t):
        t["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<turn|>", "type_id": 0}}],
            "pair": [],
            "special_tokens": {"<turn|>": {"id": "<turn|>", "ids": [106], "tokens": ["<turn|>"]}},
        }

    edit_json(tok_dir / "tokenizer.json", edit)
    ours = assert_matches_gguf_py(tok_dir)
    assert ours.special_token_ids["eos"] == 106 and ours.special_token_ids["eot"] == 1


def test_add_flags_from_tokenizer_config(tok_dir):
    edit_json(tok_dir / "tokenizer_config.json", lambda c: c.update(add_bos_token=False, add_eos_token=False))
    assert assert_matches_gguf_py(tok_dir).add_special_token == {"bos": False, "eos": False}


def test_no_tokenizer_config(tok_dir):
    """Without tokenizer_config.json, transformers picks GemmaTokenizer from config.json's model_type.
    SpecialVocab then ignores chat_template.jinja; we keep it (transformers would use it)."""
    (tok_dir / "tokenizer_config.json").unlink()
    ours = assert_matches_gguf_py(tok_dir, check_template=False)
    assert ours.chat_template == (tok_dir / "chat_template.jinja").read_text(encoding="utf-8")


def test_jinja_template_wins_over_tokenizer_config(tok_dir):
    """transformers 5.23 gives chat_template.jinja precedence; gguf.SpecialVocab prefers the
    tokenizer_config.json field. We follow transformers (only matters when both exist)."""
    edit_json(tok_dir / "tokenizer_config.json", lambda c: c.update(chat_template="{{ 'old' }}"))
    assert load_vocab(tok_dir).chat_template == (tok_dir / "chat_template.jinja").read_text(encoding="utf-8")
    (tok_dir / "chat_template.jinja").unlink()
    assert load_vocab(tok_dir).chat_template == "{{ 'old' }}"


def test_non_bpe_tokenizer_is_rejected(tok_dir):
    from diffgemma.convert import ConvertError

    edit_json(tok_dir / "tokenizer.json", lambda t: t["model"].update(byte_fallback=False))
    with pytest.raises(ConvertError, match="byte-fallback BPE"):
        load_vocab(tok_dir)


def test_roberta_post_processor(tok_dir):
    def edit(t):
        t["post_processor"] = {
            "type": "RobertaProcessing", "sep": ["<eos>", 1], "cls": ["<bos>", 2],
            "trim_offsets": True, "add_prefix_space": False,
        }

    edit_json(tok_dir / "tokenizer.json", edit)
    edit_json(tok_dir / "tokenizer_config.json", lambda c: c.pop("bos_token"))
    ours = assert_matches_gguf_py(tok_dir)
    assert ours.add_special_token == {"bos": True, "eos": True, "sep": True}
