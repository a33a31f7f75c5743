"""The Python API: llama-cpp-python's shape, transformers' diffusion names.

    from diffgemma import DiffGemma

    llm = DiffGemma("model.gguf", n_threads=None, seed=-1, n_ctx=0, verbose=False)
    out = llm("Q: name a colour. A:", max_tokens=64)              # == llm.create_completion(...)
    out = llm.create_chat_completion([{"role": "user", "content": "Hi"}], max_tokens=256)
    for chunk in llm.create_chat_completion(messages, stream=True): ...   # OpenAI chunks per canvas
    for ev in llm.stream("Why is the sky blue?"): ...                      # draft / commit / done
    res = llm.generate([2, 105, ...], max_new_tokens=32, seed=0)          # token ids in and out

Results are OpenAI-shaped dicts with `usage` and a `diffusion` block (canvases, denoising_steps,
tokens_per_forward, converged, seed, timings). Diffusion knobs go by transformers' names:
max_denoising_steps, t_min, t_max, entropy_bound, stability_threshold, confidence_threshold;
decoder_input_ids (alias initial_canvas) warm-starts the first canvas; eos_token_id overrides the
model's end-of-generation ids. The engine runs with the GIL released; Ctrl-C stops it after the
current denoising pass and raises KeyboardInterrupt.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import _core

__all__ = ["DiffGemma"]

KNOBS = ("max_denoising_steps", "t_min", "t_max", "entropy_bound", "stability_threshold", "confidence_threshold")


class DiffGemma:
    """A DiffusionGemma GGUF, loaded once; every call runs the block-diffusion loop.

    n_threads: CPU threads (None: one per physical core). seed: -1 draws a fresh seed per call
    (reported in result["diffusion"]["seed"]); any other value makes every call reproducible.
    n_ctx: context size of each call (0: exactly what the call needs). verbose: print statistics
    to stderr after each call.
    """

    def __init__(self, model_path: str | Path, n_threads: int | None = None, seed: int = -1, n_ctx: int = 0,
                 verbose: bool = False, sc_top_k: int = 0, **diffusion_defaults: Any):
        self.model_path = str(model_path)
        self.seed = seed
        self.n_ctx = n_ctx
        self.verbose = verbose
        if int(sc_top_k) < 0:
            raise ValueError(f"sc_top_k must be >= 0 (0: the exact soft embedding), got {sc_top_k}")
        self.sc_top_k = int(sc_top_k)  # opt-in approximation of self-conditioning (Context docs)
        self._model = _core.Model.load(self.model_path, n_threads or 0)
        try:
            self._tok = _core.Tokenizer(self.model_path)
        except _core.Error:
            self._tok = None  # token ids still work (generate)
        unknown = set(diffusion_defaults) - set(KNOBS)
        if unknown:
            raise TypeError(f"unknown diffusion parameters: {sorted(unknown)}; known: {list(KNOBS)}")
        self._knobs = dict(diffusion_defaults)
        self.defaults = _core.diffusion_defaults(self._model)

    # -- metadata -------------------------------------------------------------------------------

    @property
    def n_vocab(self) -> int:
        return self._model.n_vocab

    @property
    def canvas_length(self) -> int:
        return self._model.canvas_length

    # -- tokens ---------------------------------------------------------------------------------

    def _need_tokenizer(self):
        if self._tok is None:
            raise _core.Error(f"{self.model_path} has no tokenizer; use generate() with token ids")
        return self._tok

    def tokenize(self, text: str | bytes, add_bos: bool = True, special: bool = True) -> list[int]:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return list(self._need_tokenizer().tokenize(text, add_bos=add_bos, special=special))

    def detokenize(self, tokens: Sequence[int], special: bool = False) -> bytes:
        """Token ids to UTF-8 bytes (as llama-cpp-python returns them)."""
        return self._need_tokenizer().detokenize(list(tokens), render_special=special).encode("utf-8")

    def _text(self, tokens) -> str:
        if self._tok is None:
            return " ".join(str(int(t)) for t in tokens)
        return self._tok.detokenize([int(t) for t in tokens])

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True,
                            enable_thinking: bool = False, tools: list | None = None) -> list[int]:
        text = self._need_tokenizer().apply_chat_template(
            messages, tools=tools, add_generation_prompt=add_generation_prompt, enable_thinking=enable_thinking)
        return list(self._tok.tokenize(text, add_bos=False, special=True))

    # -- the loop -------------------------------------------------------------------------------

    def _params(self, max_new_tokens: int | None, seed: int | None, kw: dict) -> dict:
        if "initial_canvas" in kw:
            kw["decoder_input_ids"] = kw.pop("initial_canvas")
        unknown = set(kw) - set(KNOBS) - {"eos_token_id", "pad_token_id", "decoder_input_ids"}
        if unknown:
            raise TypeError(f"unknown generation parameters: {sorted(unknown)}")
        p = {**self._knobs, **kw}
        s = self.seed if seed is None else seed
        if s is None or s < 0:
            s = random.getrandbits(64)
        p["seed"] = int(s)
        p["max_new_tokens"] = 256 if max_new_tokens is None else int(max_new_tokens)
        if p["max_new_tokens"] <= 0:
            raise ValueError(f"max_tokens must be a positive integer (got {max_new_tokens})")
        return p

    def _run(self, ids: Sequence[int], p: dict, callback=None, draft_events: bool = True) -> dict:
        C = self.canvas_length
        need = len(ids) + -(-p["max_new_tokens"] // C) * C
        ctx = _core.Context(self._model, n_ctx=self.n_ctx or need, sc_top_k=self.sc_top_k)
        res = _core.generate(ctx, list(ids), callback=callback, draft_events=draft_events, **p)
        res["seed"] = p["seed"]
        if self.verbose:
            st = res["stats"]
            print(f"diffgemma: {st['canvases']} canvases, {st['denoising_steps']} steps, "
                  f"{st['tokens_per_forward']:.2f} tokens/forward, {st['ms_per_step']:.2f} ms/step, "
                  f"{st['tokens_per_second']:.1f} tokens/s, seed {p['seed']}", flush=True)
        return res

    def generate(self, ids: Sequence[int], max_new_tokens: int | None = 256, seed: int | None = None,
                 callback=None, **kw: Any) -> dict:
        """Token ids in, token ids out: {"tokens", "canvases", "pending_tokens", "eos_token",
        "stop_reason", "stats", "seed"} (canvases: every committed canvas, pad after EOS, as
        transformers' sequences[P:]). callback(event) sees draft/commit/done events."""
        return self._run(ids, self._params(max_new_tokens, seed, kw), callback=callback,
                         draft_events=callback is not None)

    def _events(self, ids: Sequence[int], p: dict) -> Iterator[dict]:
        """Runs the loop on a worker thread and yields its events with text added."""
        q: queue.Queue = queue.Queue()
        box: dict = {}
        stop = threading.Event()  # the consumer left (Ctrl-C, break): cancel the engine

        def cb(ev):
            if stop.is_set():
                raise KeyboardInterrupt
            q.put(ev)

        def work():
            try:
                box["result"] = self._run(ids, p, callback=cb)
            except BaseException as e:  # delivered to the consumer
                box["error"] = e
            finally:
                q.put(None)

        # Committed text is decoded incrementally so a character split across canvases stays whole.
        sd = self._tok.streaming_detokenizer() if self._tok is not None else None
        t = threading.Thread(target=work, daemon=True)
        t.start()
        try:
            while True:
                ev = q.get()
                if ev is None:
                    break
                if ev["type"] == "draft":
                    ev["text"] = self._text(ev["argmax"])
                elif ev["type"] == "commit":
                    valid = [int(x) for x in ev["tokens"][: ev["n_valid"]]]
                    ev["text"] = sd.push(valid) if sd is not None else self._text(valid)
                elif ev["type"] == "done":
                    continue  # replaced below by the full result
                yield ev
        finally:
            stop.set()
            t.join()
        if "error" in box:
            raise box["error"]
        res = box["result"]
        yield {"type": "done", "text": self._text(res["tokens"]), "tail": sd.flush() if sd is not None else "",
               "tokens": res["tokens"].tolist(), "stop_reason": res["stop_reason"], "seed": res["seed"],
               "stats": res["stats"]}

    def stream(self, prompt: str | Sequence[int] | list[dict], max_tokens: int | None = 256, seed: int | None = None,
               **kw: Any) -> Iterator[dict]:
        """Diffusion-aware events: {"type": "draft", canvas, step, argmax, accepted, text, ...} per
        step, {"type": "commit", canvas, tokens, text} per canvas, {"type": "done", text, stats}.
        prompt: text (chat-formatted as one user turn), a message list, or token ids."""
        return self._events(self._prompt_ids(prompt), self._params(max_tokens, seed, kw))

    def _prompt_ids(self, prompt) -> list[int]:
        if isinstance(prompt, str):
            return self.apply_chat_template([{"role": "user", "content": prompt}])
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict):
            return self.apply_chat_template(prompt)
        return [int(t) for t in prompt]

    # -- OpenAI-shaped ---------------------------------------------------------------------------

    def _blocks(self, res: dict, n_prompt: int) -> tuple[dict, dict, str]:
        st = res["stats"]
        usage = {"prompt_tokens": n_prompt, "completion_tokens": len(res["tokens"]),
                 "total_tokens": n_prompt + len(res["tokens"])}
        diffusion = {"canvases": st["canvases"], "denoising_steps": st["denoising_steps"],
                     "tokens_per_forward": st["tokens_per_forward"], "converged": st["converged"],
                     "seed": res["seed"], "prefill_ms": st["prefill_ms"], "ms_per_step": st["ms_per_step"],
                     "ttfc_ms": st["ttfc_ms"], "tokens_per_second": st["tokens_per_second"],
                     "turn_closed": res["stop_reason"] == "eos"}
        finish = {"eos": "stop", "length": "length", "cancelled": "cancelled"}[res["stop_reason"]]
        return usage, diffusion, finish

    def create_completion(self, prompt: str | Sequence[int], max_tokens: int | None = 256, seed: int | None = None,
                          stream: bool = False, max_new_tokens: int | None = None, **kw: Any):
        """Raw completion: the prompt is tokenized as is (with BOS), no chat template."""
        ids = self.tokenize(prompt) if isinstance(prompt, (str, bytes)) else [int(t) for t in prompt]
        p = self._params(max_new_tokens or max_tokens, seed, kw)
        cid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        if stream:
            return self._completion_chunks(ids, p, cid, created)
        res = self._run(ids, p, draft_events=False)
        usage, diffusion, finish = self._blocks(res, len(ids))
        return {"id": cid, "object": "text_completion", "created": created, "model": self.model_path,
                "choices": [{"text": self._text(res["tokens"]), "index": 0, "logprobs": None,
                             "finish_reason": finish}],
                "usage": usage, "diffusion": diffusion}

    __call__ = create_completion

    def _completion_chunks(self, ids, p, cid, created):
        for ev in self._events(ids, p):
            if ev["type"] == "commit" and ev["text"]:
                yield {"id": cid, "object": "text_completion", "created": created, "model": self.model_path,
                       "choices": [{"text": ev["text"], "index": 0, "logprobs": None, "finish_reason": None}]}
            elif ev["type"] == "done":
                if ev["tail"]:
                    yield {"id": cid, "object": "text_completion", "created": created, "model": self.model_path,
                           "choices": [{"text": ev["tail"], "index": 0, "logprobs": None, "finish_reason": None}]}
                usage, diffusion, finish = self._blocks(ev, len(ids))
                yield {"id": cid, "object": "text_completion", "created": created, "model": self.model_path,
                       "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": finish}],
                       "usage": usage, "diffusion": diffusion}

    def create_chat_completion(self, messages: list[dict], max_tokens: int | None = 256, stream: bool = False,
                               seed: int | None = None, enable_thinking: bool = False,
                               max_new_tokens: int | None = None, **kw: Any):
        """Chat completion with the model's chat template; stream=True yields OpenAI chunks, one
        content delta per committed canvas, the last with finish_reason, usage and diffusion."""
        ids = self.apply_chat_template(messages, enable_thinking=enable_thinking)
        p = self._params(max_new_tokens or max_tokens, seed, kw)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if stream:
            return self._chat_chunks(ids, p, cid, created)
        res = self._run(ids, p, draft_events=False)
        usage, diffusion, finish = self._blocks(res, len(ids))
        return {"id": cid, "object": "chat.completion", "created": created, "model": self.model_path,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self._text(res["tokens"])},
                             "logprobs": None, "finish_reason": finish}],
                "usage": usage, "diffusion": diffusion}

    def _chat_chunks(self, ids, p, cid, created):
        head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": self.model_path}
        yield {**head, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
        for ev in self._events(ids, p):
            if ev["type"] == "commit" and ev["text"]:
                yield {**head, "choices": [{"index": 0, "delta": {"content": ev["text"]}, "finish_reason": None}]}
            elif ev["type"] == "done":
                if ev["tail"]:
                    yield {**head, "choices": [{"index": 0, "delta": {"content": ev["tail"]}, "finish_reason": None}]}
                usage, diffusion, finish = self._blocks(ev, len(ids))
                yield {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                       "usage": usage, "diffusion": diffusion}
