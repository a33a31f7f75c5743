"""The Python API (diffgemma.DiffGemma): llama-cpp-python's shape, OpenAI-shaped results with
usage and a diffusion block, the draft/commit/done stream, token ids in and out."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def llm(tiny_gguf):
    from diffgemma import DiffGemma

    return DiffGemma(tiny_gguf("tiny", "f32"), n_threads=2, seed=5, max_denoising_steps=3)


MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]


def test_completion_shape_and_determinism(llm):
    out = llm("Hello", max_tokens=10)
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl-")
    ch = out["choices"][0]
    assert isinstance(ch["text"], str) and ch["finish_reason"] in ("stop", "length") and ch["index"] == 0
    u = out["usage"]
    assert u["prompt_tokens"] == len(llm.tokenize("Hello")) and 0 <= u["completion_tokens"] <= 10
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    d = out["diffusion"]
    assert d["seed"] == 5 and d["canvases"] == 1 and 1 <= d["denoising_steps"] <= 3
    assert set(d) >= {"canvases", "denoising_steps", "tokens_per_forward", "converged", "turn_closed"}
    again = llm.create_completion("Hello", max_tokens=10)
    assert again["choices"][0]["text"] == ch["text"]


def test_chat_completion_matches_generate_on_the_template(llm):
    out = llm.create_chat_completion(MSGS, max_tokens=20, seed=11)
    assert out["object"] == "chat.completion"
    msg = out["choices"][0]["message"]
    assert msg["role"] == "assistant"
    ids = llm.apply_chat_template(MSGS)
    res = llm.generate(ids, max_new_tokens=20, seed=11)
    assert msg["content"] == llm.detokenize(res["tokens"]).decode()
    assert out["usage"]["prompt_tokens"] == len(ids) and out["usage"]["completion_tokens"] == len(res["tokens"])
    assert out["diffusion"]["denoising_steps"] == res["stats"]["denoising_steps"]


def test_chat_stream_chunks(llm):
    full = llm.create_chat_completion(MSGS, max_tokens=40, seed=3, eos_token_id=[])
    chunks = list(llm.create_chat_completion(MSGS, max_tokens=40, seed=3, eos_token_id=[], stream=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == full["choices"][0]["message"]["content"]
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "length" and last["usage"]["completion_tokens"] == 40
    assert last["diffusion"]["canvases"] == 3
    assert len(chunks) >= 4  # role, a delta per committed canvas, the end


def test_stream_events(llm):
    events = list(llm.stream("Hi", max_tokens=20, seed=2, eos_token_id=[]))
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "done" and kinds.count("commit") == 2
    assert kinds.index("commit") == 3  # three drafts (max_denoising_steps=3) before the first commit
    d = events[0]
    assert d["canvas"] == 0 and d["step"] == 0 and isinstance(d["text"], str) and d["accepted"].shape == (16,)
    done = events[-1]
    assert len(done["tokens"]) == 20 and done["stats"]["canvases"] == 2 and done["seed"] == 2
    assert done["text"] == "".join(e["text"] for e in events if e["type"] == "commit") + done["tail"]


def test_leaving_a_stream_early_stops_the_engine(llm):
    it = llm.stream("Hi", max_tokens=256, seed=2, max_denoising_steps=48, eos_token_id=[])
    first = next(it)
    assert first["type"] == "draft"
    it.close()  # GeneratorExit: the engine is cancelled at its next step, the thread joined
    assert llm("Hi", max_tokens=4)["usage"]["completion_tokens"] <= 4


def test_tokens_and_knobs(llm):
    ids = llm.tokenize("Hello world", add_bos=False)
    assert llm.detokenize(ids) == b"Hello world"
    assert llm.tokenize(b"Hello world", add_bos=True)[0] == 2
    r = llm.generate([2, 105, 9], max_new_tokens=17, seed=1, eos_token_id=[], t_min=0.5, t_max=0.9,
                     entropy_bound=0.3, stability_threshold=0, confidence_threshold=100.0)
    assert len(r["tokens"]) == 17 and r["stats"]["denoising_steps"] == 2  # stability 0: one step per canvas
    init = list(range(16))
    a = llm.generate([2, 105, 9], max_new_tokens=16, seed=1, initial_canvas=init, callback=lambda e: None)
    b = llm.generate([2, 105, 9], max_new_tokens=16, seed=1, decoder_input_ids=init)
    assert a["tokens"].tolist() == b["tokens"].tolist()
    with pytest.raises(TypeError, match="unknown generation parameters"):
        llm.generate([2], top_k=5)
    with pytest.raises(ValueError):
        llm("x", max_tokens=0)


def test_random_seed_is_reported_and_reproduces(tiny_gguf):
    from diffgemma import DiffGemma

    llm = DiffGemma(tiny_gguf("tiny", "f32"), n_threads=1, max_denoising_steps=2)  # seed=-1
    out = llm("Hi", max_tokens=16)
    seed = out["diffusion"]["seed"]
    again = llm("Hi", max_tokens=16, seed=seed)
    assert again["choices"][0]["text"] == out["choices"][0]["text"]
