"""The streaming detokenizer: characters whose bytes are split across tokens and across canvases."""

from __future__ import annotations

import random

import pytest

from fixtures.tokenizer import write_gemma4_tokenizer
from tokenizer_support import core, make_corpus, write_tokenizer_gguf

BYTE0 = 238  # id of <0x00> in the fixture (and in the real Gemma 4 vocabulary)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    d = tmp_path_factory.mktemp("gemma4_stream")
    write_gemma4_tokenizer(d, 512)  # small vocabulary: most non-Latin text falls back to bytes
    return core().Tokenizer(str(write_tokenizer_gguf(d, d / "t.gguf")))


def byte_ids(s: str) -> list[int]:
    return [BYTE0 + b for b in s.encode()]


def test_character_split_across_canvases(tok):
    euro = byte_ids("€")  # E2 82 AC
    x = tok.tokenize("x", add_bos=False)
    d = tok.streaming_detokenizer()
    assert d.push(euro[:1]) == "" and d.pending
    assert d.push(euro[1:2]) == ""
    assert d.push(euro[2:]) == ""  # complete, but held until the byte run ends
    assert d.push(x) == "€x" and not d.pending
    assert d.flush() == ""


def test_flush_releases_held_character(tok):
    d = core().StreamingDetokenizer(tok)
    assert d.push(byte_ids("😀")) == ""
    assert d.flush() == "😀"
    assert d.flush() == "" and not d.pending


def test_broken_sequences_as_detokenize(tok):
    # a truncated character before a normal token, and at the very end
    x = tok.tokenize("x", add_bos=False)
    for ids in ([BYTE0 + 0xE2, BYTE0 + 0x82] + x, [BYTE0 + 0xF0, BYTE0 + 0x9F], byte_ids("é") + [BYTE0 + 0xFF] + x):
        d = tok.streaming_detokenizer()
        out = "".join(d.push(i) for i in ids) + d.flush()
        assert out == tok.detokenize(ids)
        assert "\ufffd" in out


def test_every_split_point(tok):
    text = "añ€😀👨‍👩‍👧 Привет 你好"
    ids = tok.tokenize(text, add_bos=False)
    assert sum(1 for i in ids if BYTE0 <= i < BYTE0 + 256) >= 10
    for cut in range(len(ids) + 1):
        d = tok.streaming_detokenizer()
        first, second = d.push(ids[:cut]), d.push(ids[cut:])
        assert "\ufffd" not in first + second
        assert first + second + d.flush() == text


def test_random_canvases_over_corpus(tok):
    rng = random.Random(3)
    corpus = make_corpus(3000, seed=5)
    n_held = 0
    for s in corpus:
        ids = tok.tokenize(s, add_bos=rng.random() < 0.5)
        for render_special in (False, True):
            d = tok.streaming_detokenizer(render_special)
            pieces, i = [], 0
            while i < len(ids):
                n = rng.randint(1, 8)  # canvas sizes
                pieces.append(d.push(ids[i : i + n]))
                n_held += d.pending
                i += n
            pieces.append(d.flush())
            assert "".join(pieces) == tok.detokenize(ids, render_special=render_special)
            if "\ufffd" not in s:
                assert not any("\ufffd" in p for p in pieces)
    assert n_held > 100  # characters really were split across canvases


def test_render_special(tok):
    ids = tok.tokenize("<bos><|turn>user\nhé<turn|>", add_bos=False)
    assert core().StreamingDetokenizer(tok).push(ids) == tok.detokenize(ids)
    assert core().StreamingDetokenizer(tok, render_special=True).push(ids) == "<bos><|turn>user\nhé<turn|>"
    with pytest.raises(core().Error, match="out of range"):
        tok.streaming_detokenizer().push(10**6)
