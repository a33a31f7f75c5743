"""The C++ gemma4 tokenizer against HF `tokenizers` on the gemma4-style fixture tokenizer.json
(tests/fixtures/tokenizer.py), converted to GGUF metadata by our converter's vocabulary code."""

from __future__ import annotations

import random

import pytest

tokenizers = pytest.importorskip("tokenizers")

from fixtures.tokenizer import write_gemma4_tokenizer  # noqa: E402
from tokenizer_support import SPACE, core, make_corpus, write_tokenizer_gguf  # noqa: E402

N_STRINGS = 12_000
# The fixture's corpus runs out of merges at about 1,100; 2048 is the largest vocabulary that still
# differs from the smaller one in more than <unusedN> slots.
VOCAB_SIZES = [512, 2048]
# USER_DEFINED in the GGUF (rendered by llama.cpp) but special in HF (Gemma4Model.set_vocab).
VISIBLE_SPECIALS = ["<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", '<|"|>']


@pytest.fixture(scope="module", params=VOCAB_SIZES, ids=lambda v: f"vocab{v}")
def pair(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"gemma4_tok_{request.param}")
    write_gemma4_tokenizer(d, request.param)
    gguf_path = write_tokenizer_gguf(d, d / "tokenizer.gguf")
    hf = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    ours = core().Tokenizer(str(gguf_path))
    return hf, ours


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(N_STRINGS)


@pytest.fixture(scope="module")
def hf_ids(pair, corpus):
    hf, _ = pair
    return [e.ids for e in hf.encode_batch(corpus, add_special_tokens=False)]


def _first_mismatches(corpus, expected, got, limit=5):
    return [(corpus[i], expected[i], got[i]) for i in range(len(corpus)) if expected[i] != got[i]][:limit]


def test_corpus_size(corpus):
    assert len(corpus) >= 10_000
    assert len(set(corpus)) > 9_000
    assert not any(0xD800 <= ord(c) <= 0xDFFF for s in corpus for c in s)


def test_ids_identical_to_hf(pair, corpus, hf_ids):
    _, ours = pair
    got = [ours.tokenize(s, add_bos=False) for s in corpus]
    assert _first_mismatches(corpus, hf_ids, got) == []
    # The comparison is not vacuous: special tokens, byte fallback and merges all occur.
    flat = {i for ids in hf_ids for i in ids}
    assert {2, 105, 106, 100, 52, 107, 108, 138} <= flat
    assert any(ours.token_type(i) == core().TokenType.BYTE for i in flat)
    assert sum(len(ids) for ids in hf_ids) < sum(len(s.encode()) for s in corpus)


def test_bos(pair, corpus, hf_ids):
    _, ours = pair
    assert ours.bos_id == 2 and ours.add_bos is True
    for s, ids in list(zip(corpus, hf_ids))[:2000]:
        assert ours.tokenize(s) == [2] + ids
        assert ours.tokenize(s, add_bos=True) == [2] + ids


def test_plain_text_mode_matches_encode_special_tokens(pair, corpus):
    hf, ours = pair
    hf.encode_special_tokens = True
    try:
        expected = [e.ids for e in hf.encode_batch(corpus, add_special_tokens=False)]
    finally:
        hf.encode_special_tokens = False
    got = [ours.tokenize(s, add_bos=False, special=False) for s in corpus]
    assert _first_mismatches(corpus, expected, got) == []
    assert ours.tokenize("<|turn>", add_bos=False, special=False) != [105]
    assert ours.tokenize("<|turn>", add_bos=False, special=True) == [105]


def test_decoded_text_identical_to_hf(pair, corpus, hf_ids):
    hf, ours = pair
    for s, ids in zip(corpus, hf_ids):
        # render_special=True renders every token, as HF with skip_special_tokens=False
        assert ours.detokenize(ids, render_special=True) == hf.decode(ids, skip_special_tokens=False)
        # render_special=False hides control tokens; the Gemma 4 markers that the GGUF types
        # USER_DEFINED stay visible (llama.cpp's behaviour), where HF would hide them too
        control = {i for i in ids if ours.token_type(i) == core().TokenType.CONTROL}
        kept = [i for i in ids if i not in control]
        assert ours.detokenize(ids) == hf.decode(kept, skip_special_tokens=False)
        # and the text round-trips (the normalizer turns " " into "▁", which decodes as " ")
        assert ours.detokenize(ids, render_special=True) == s.replace(SPACE, " ")


def test_decode_of_arbitrary_ids_matches_hf(pair):
    """Random id sequences, rich in byte tokens: invalid UTF-8 byte runs become U+FFFD per byte
    token, exactly as HF's ByteFallback decoder does."""
    hf, ours = pair
    rng = random.Random(7)
    n = ours.n_vocab
    byte_ids = list(range(238, 238 + 256))
    for _ in range(3000):
        ids = [rng.choice(byte_ids) if rng.random() < 0.6 else rng.randrange(n) for _ in range(rng.randint(0, 12))]
        assert ours.detokenize(ids, render_special=True) == hf.decode(ids, skip_special_tokens=False), ids


def test_known_ids(pair):
    hf, ours = pair
    tok = lambda s: ours.tokenize(s, add_bos=False)  # noqa: E731
    assert tok("") == []
    user = hf.encode("user", add_special_tokens=False).ids
    assert len(user) >= 1 and 107 not in user
    assert tok("<bos><|turn>user\n") == [2, 105] + user + [107]
    assert tok("<turn|>\n") == [106, 107]
    assert tok("\n\n") == [108] and tok("\n\n\n") == [109]
    assert tok("  ") == [138]
    assert tok('<|"|>') == [52]
    assert tok("<|channel>thought\n<channel|>")[0] == 100 and tok("<|channel>thought\n<channel|>")[-1] == 101
    # a character outside the vocabulary falls back to its UTF-8 bytes
    assert tok("\U0001fae9") == [238 + b for b in "\U0001fae9".encode()]
    assert ours.model == "gemma4" and ours.n_vocab in VOCAB_SIZES
    assert (ours.eos_id, ours.unk_id, ours.pad_id, ours.mask_id) == (1, 3, 0, 4)
    assert ours.eog_ids == [1, 106, 50]
    assert ours.is_eog(106) and ours.is_eog(50) and not ours.is_eog(107)
    assert ours.token_text(138) == SPACE * 2 and ours.token_to_piece(138) == b"  "
    assert ours.token_to_piece(2) == b"" and ours.token_to_piece(2, render_special=True) == b"<bos>"
    assert ours.token_to_piece(238 + 0xE2) == b"\xe2"


def test_tokenizer_from_gguffile_object(pair, tmp_path):
    _, ours = pair
    write_gemma4_tokenizer(tmp_path, 512)
    path = write_tokenizer_gguf(tmp_path, tmp_path / "t.gguf")
    f = core().GGUFFile(str(path))
    t = core().Tokenizer(f)
    assert t.tokenize("Hello world") == core().Tokenizer(path).tokenize("Hello world")
    assert "gemma4" in repr(t) and len(t) == 512


def test_long_inputs(pair):
    hf, ours = pair
    text = ("Lorem ipsum dolor sit amet, " * 2000) + ("\n" * 50) + ("x" * 5000) + (" " * 3000) + "end"
    assert ours.tokenize(text, add_bos=False) == hf.encode(text, add_special_tokens=False).ids


def test_errors(pair, tmp_path):
    _, ours = pair
    C = core()
    with pytest.raises(C.Error, match="out of range"):
        ours.detokenize([ours.n_vocab])
    with pytest.raises(C.Error, match="out of range"):
        ours.token_text(-1)
    with pytest.raises(TypeError):
        ours.tokenize(12)
    # a GGUF without a tokenizer, and one with a tokenizer model this engine does not read
    from gguf import GGUFWriter

    for name, kvs in [("none.gguf", {}), ("gpt2.gguf", {"tokenizer.ggml.model": "gpt2"}),
                      ("prefix.gguf", {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": ["a", "b"],
                                       "tokenizer.ggml.add_space_prefix": True}),
                      ("nomerges.gguf", {"tokenizer.ggml.model": "gemma4", "tokenizer.ggml.tokens": ["a", "b"]}),
                      ("badbos.gguf", {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": ["a", "b"],
                                       "tokenizer.ggml.bos_token_id": 7})]:
        w = GGUFWriter(str(tmp_path / name), "diffusion-gemma")
        for k, v in kvs.items():
            if isinstance(v, bool):
                w.add_bool(k, v)
            elif isinstance(v, int):
                w.add_uint32(k, v)
            elif isinstance(v, list):
                w.add_array(k, v)
            else:
                w.add_string(k, v)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        w.close()
    with pytest.raises(C.GGUFError, match="no tokenizer"):
        C.Tokenizer(str(tmp_path / "none.gguf"))
    with pytest.raises(C.GGUFError, match="unsupported tokenizer model 'gpt2'"):
        C.Tokenizer(str(tmp_path / "gpt2.gguf"))
    with pytest.raises(C.GGUFError, match="add_space_prefix"):
        C.Tokenizer(str(tmp_path / "prefix.gguf"))
    with pytest.raises(C.GGUFError, match="needs tokenizer.ggml.merges"):
        C.Tokenizer(str(tmp_path / "nomerges.gguf"))
    with pytest.raises(C.GGUFError, match="is not a token id"):
        C.Tokenizer(str(tmp_path / "badbos.gguf"))


def test_cli_tokenize(pair, tmp_path):
    import json
    import shutil
    import subprocess

    exe = shutil.which("diffgemma-cli")
    if exe is None:
        pytest.skip("diffgemma-cli is not on PATH (install the package)")
    hf, ours = pair
    write_gemma4_tokenizer(tmp_path, ours.n_vocab)
    model = write_tokenizer_gguf(tmp_path, tmp_path / "t.gguf")
    text = "<|turn>user\nHello wörld 😀  tabs\t\there<turn|>\n"

    def run(*args, stdin=None):
        return subprocess.run([exe, "--tokenize", "-m", str(model), *args], input=stdin, capture_output=True,
                              text=True, encoding="utf-8")

    r = run("-p", text)
    assert r.returncode == 0, r.stderr
    assert [int(x) for x in r.stdout.split()] == [2] + hf.encode(text, add_special_tokens=False).ids
    r = run("--no-bos", "--json", "-p", text)
    doc = json.loads(r.stdout)
    assert doc["ids"] == hf.encode(text, add_special_tokens=False).ids
    assert doc["pieces"] == [hf.id_to_token(i) for i in doc["ids"]]
    (tmp_path / "prompt.txt").write_text(text, encoding="utf-8")
    assert run("-f", str(tmp_path / "prompt.txt")).stdout == run("-p", text).stdout
    assert run("-f", "-", stdin=text).stdout == run("-p", text).stdout
    r = run("--no-special", "--no-bos", "-p", "<|turn>")
    assert [int(x) for x in r.stdout.split()] == ours.tokenize("<|turn>", add_bos=False, special=False)
    # --chat: the prompt as one user turn, formatted natively with the template in the GGUF
    r = run("--chat", "-p", "Hi there")
    assert r.returncode == 0, r.stderr
    chat = ours.apply_chat_template([{"role": "user", "content": "Hi there"}])
    assert chat == "<bos><|turn>user\nHi there<turn|>\n<|turn>model\n"
    assert [int(x) for x in r.stdout.split()] == hf.encode(chat, add_special_tokens=False).ids
    r = run("--chat", "--think", "-p", "Hi there")
    think = ours.apply_chat_template([{"role": "user", "content": "Hi there"}], enable_thinking=True)
    assert [int(x) for x in r.stdout.split()] == hf.encode(think, add_special_tokens=False).ids
    bad = subprocess.run([exe, "--tokenize", "-p", "x"], capture_output=True, text=True)
    assert bad.returncode == 2 and "needs a model" in bad.stderr
    bad = subprocess.run([exe, "--tokenize", "-m", str(tmp_path / "missing.gguf"), "-p", "x"], capture_output=True,
                         text=True)
    assert bad.returncode == 1 and "cannot open" in bad.stderr


def test_tokenizer_of_converted_model(tiny_gguf, tiny_checkpoint, corpus):
    """The whole converter path: the tiny DiffusionGemma checkpoint (tests/fixtures/models.py, with the
    fixture tokenizer) converted by `diffgemma.convert`, its tokenizer read back from the model GGUF."""
    path = tiny_gguf("tiny")
    hf = tokenizers.Tokenizer.from_file(str(tiny_checkpoint("tiny") / "tokenizer.json"))
    ours = core().Tokenizer(str(path))
    assert ours.model == "gemma4" and ours.n_vocab == hf.get_vocab_size(with_added_tokens=True)
    expected = [e.ids for e in hf.encode_batch(corpus, add_special_tokens=False)]
    got = [ours.tokenize(s, add_bos=False) for s in corpus]
    assert _first_mismatches(corpus, expected, got) == []
    template = (tiny_checkpoint("tiny") / "chat_template.jinja").read_text(encoding="utf-8")
    assert ours.chat_template == template
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    try:
        fmt = core().chat_format(template)
    except core().Error:  # without trl the fixture writes a small template of its own
        with pytest.raises(core().Error, match="render it with jinja2"):
            ours.apply_chat_template(msgs)
        return
    from transformers.utils.chat_template_utils import render_jinja_template

    assert fmt == "gemma4"
    expected_text = render_jinja_template(conversations=[msgs], chat_template=template, add_generation_prompt=True,
                                          bos_token="<bos>")[0][0]
    assert ours.apply_chat_template(msgs) == expected_text
