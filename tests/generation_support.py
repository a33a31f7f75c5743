"""Support for the generation tests: the shared random stream of model-spec §10.2 in Python, a
context manager that patches transformers' DiffusionGemma generate() to draw from it, and runners
that record every denoising step on both sides so a test can name the first divergence.

The patch replaces, inside the context only:
- `EntropyBoundSampler.initialize_canvas` (stream 0; starts a new canvas and resets the step),
- `EntropyBoundSampler.renoise_canvas` (stream 2, then step += 1),
- `torch.multinomial` as `generation_diffusion_gemma` sees it (stream 1), through a proxy of the
  module's `torch` global so nothing else in the process is affected.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def draw(seed: int, stream: int, canvas: int, step: int, pos: int) -> int:
    key = ((stream << 60) ^ (canvas << 40) ^ (step << 20) ^ pos) & MASK64
    return splitmix64((seed & MASK64) ^ splitmix64(key))


def uniform(seed: int, stream: int, canvas: int, step: int, pos: int) -> float:
    return (draw(seed, stream, canvas, step, pos) >> 11) * 2.0**-53


def sample_categorical(p: np.ndarray, u: float) -> int:
    """Smallest i with fp64 running sum > u * total; else the last i with p[i] > 0."""
    cdf = np.cumsum(p.astype(np.float64))  # np.add.accumulate: sequential
    idx = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    if idx < len(p):
        return idx
    return int(np.nonzero(p > 0)[0][-1])


@dataclass
class Trace:
    """Per step: (canvas, step) -> argmax canvas, next input canvas, accepted mask."""

    steps: list = field(default_factory=list)  # [(canvas, step, argmax, next, accepted)]
    sequence: np.ndarray | None = None  # generated tokens as transformers returns them (sequences[P:])
    tokens_per_forward: float | None = None


@contextlib.contextmanager
def shared_stream(seed: int, trace: Trace):
    import torch
    import transformers.models.diffusion_gemma.generation_diffusion_gemma as G

    state = {"canvas": -1, "step": 0}
    sampler_cls = G.EntropyBoundSampler
    orig_init, orig_renoise, orig_torch = sampler_cls.initialize_canvas, sampler_cls.renoise_canvas, G.torch

    def initialize_canvas(self, batch_size, device):
        assert batch_size == 1
        state["canvas"] += 1
        state["step"] = 0
        c = state["canvas"]
        ids = [draw(seed, 0, c, 0, pos) % self.vocab_size for pos in range(self.canvas_length)]
        return torch.tensor([ids], dtype=torch.long, device=device)

    def renoise_canvas(self, accepted_canvas, cur_step):
        c, s = state["canvas"], state["step"]
        noise = [draw(seed, 2, c, s, pos) % self.vocab_size for pos in range(self.canvas_length)]
        noise = torch.tensor([noise], dtype=accepted_canvas.dtype, device=accepted_canvas.device)
        out = torch.where(~self.accepted_token_mask, noise, accepted_canvas)
        trace.steps.append([c, s, None, out[0].numpy().copy(), self.accepted_token_mask[0].numpy().copy()])
        state["step"] += 1
        return out

    def multinomial(probs, num_samples, *args, **kwargs):
        assert num_samples == 1 and not args and not kwargs
        c, s = state["canvas"], state["step"]
        p = probs.detach().to(torch.float32).numpy()
        out = [sample_categorical(p[pos], uniform(seed, 1, c, s, pos)) for pos in range(p.shape[0])]
        return torch.tensor(out, dtype=torch.long).unsqueeze(-1)

    class TorchProxy:
        def __getattr__(self, name):
            return getattr(torch, name)

    proxy = TorchProxy()
    proxy.multinomial = multinomial
    sampler_cls.initialize_canvas = initialize_canvas
    sampler_cls.renoise_canvas = renoise_canvas
    G.torch = proxy
    try:
        yield state
    finally:
        sampler_cls.initialize_canvas, sampler_cls.renoise_canvas = orig_init, orig_renoise
        G.torch = orig_torch


class _DraftRecorder:
    """A transformers streamer: put_draft(value=argmax canvas) after every step."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.n = 0

    def put(self, value):
        pass

    def end(self):
        pass

    def put_draft(self, value):
        self.trace.steps[self.n][2] = value[0].numpy().copy()
        self.n += 1


@dataclass
class GenConfig:
    """One generation configuration, under transformers' names."""

    name: str
    max_new_tokens: int = 32
    max_denoising_steps: int = 12
    t_min: float = 0.4
    t_max: float = 0.8
    entropy_bound: float = 0.1
    stability_threshold: int = 1
    confidence_threshold: float = 0.005
    eos_token_id: list | None = None  # None: no EOS
    pad_token_id: int | None = 0
    decoder_input_ids: np.ndarray | None = None
    prompt_len: int = 21


class EngineLogits:
    """Replaces transformers' decoder forward by our engine's, inside one generate() call: the
    loop is then transformers' own (temperature, softmax, entropy, sort, cumsum, stopping, EOS,
    padding) running on bit-identical logits, so any difference from our loop is the loop's.
    The engine context mirrors the cache: the prompt, then each committed (argmax) canvas."""

    def __init__(self, engine_model, prompt: np.ndarray, trace: Trace, n_ctx: int = 512):
        from diffgemma import _core

        self.ctx = _core.Context(engine_model, n_ctx=n_ctx)
        self.prompt = prompt
        self.trace = trace
        self.canvas = -1
        self.sc_inputs = []  # the self-conditioning input of every decoder pass, None on a first step

    def __call__(self, decoder_input_ids=None, self_conditioning_logits=None, **_):
        import torch
        from types import SimpleNamespace

        c = self.trace_canvas()
        if c != self.canvas:  # first pass of canvas c: bring the engine cache to the same point
            if c == 0:
                self.ctx.clear()
                self.ctx.encode(self.prompt)
            else:
                last = [s for s in self.trace.steps if s[0] == c - 1][-1]
                self.ctx.commit(last[2])
            self.canvas = c
        sc = None if self_conditioning_logits is None else self_conditioning_logits[0].float().numpy()
        self.sc_inputs.append(sc)
        logits = self.ctx.denoise(decoder_input_ids[0].numpy(), sc)
        return SimpleNamespace(logits=torch.from_numpy(logits)[None])

    def trace_canvas(self) -> int:
        return self._state["canvas"]


def hf_generate(model, prompt: np.ndarray, cfg: GenConfig, seed: int, logits_from=None) -> Trace:
    """transformers' generate() under the shared stream. logits_from: an engine Model whose
    decoder logits replace transformers' (EngineLogits)."""
    import torch
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

    trace = Trace()
    kwargs = dict(
        max_new_tokens=cfg.max_new_tokens,
        max_denoising_steps=cfg.max_denoising_steps,
        t_min=cfg.t_min,
        t_max=cfg.t_max,
        sampler_config=EntropyBoundSamplerConfig(entropy_bound=float(cfg.entropy_bound)),
        stability_threshold=cfg.stability_threshold,
        confidence_threshold=float(cfg.confidence_threshold),
        eos_token_id=cfg.eos_token_id,
        pad_token_id=cfg.pad_token_id,
        return_dict_in_generate=True,
    )
    if cfg.decoder_input_ids is not None:
        kwargs["decoder_input_ids"] = torch.tensor(cfg.decoder_input_ids, dtype=torch.long)[None]
    with shared_stream(seed, trace) as state, torch.no_grad():
        if logits_from is not None:
            swap = EngineLogits(logits_from, prompt, trace)
            swap._state = state
            trace.swap = swap
            model.forward = swap  # generate() calls self.forward for the decoder
        try:
            out = model.generate(
                input_ids=torch.tensor(prompt, dtype=torch.long)[None], streamer=_DraftRecorder(trace), **kwargs
            )
        finally:
            if logits_from is not None:
                del model.forward
    trace.sequence = out.sequences[0, len(prompt):].numpy()
    trace.tokens_per_forward = float(out.tokens_per_forward[0])
    return trace


def engine_generate(model, prompt: np.ndarray, cfg: GenConfig, seed: int, n_ctx: int = 512):
    """(Trace, result dict) of our engine on an already loaded diffgemma._core.Model."""
    from diffgemma import _core

    trace = Trace()

    def on_event(ev):
        if ev["type"] == "draft":
            trace.steps.append([ev["canvas"], ev["step"], ev["argmax"].copy(), ev["next"].copy(), ev["accepted"].copy()])

    ctx = _core.Context(model, n_ctx=n_ctx)
    res = _core.generate(
        ctx,
        prompt,
        max_new_tokens=cfg.max_new_tokens,
        seed=seed,
        max_denoising_steps=cfg.max_denoising_steps,
        t_min=cfg.t_min,
        t_max=cfg.t_max,
        entropy_bound=cfg.entropy_bound,
        stability_threshold=cfg.stability_threshold,
        confidence_threshold=cfg.confidence_threshold,
        eos_token_id=[] if cfg.eos_token_id is None else cfg.eos_token_id,
        pad_token_id=-1 if cfg.pad_token_id is None else cfg.pad_token_id,
        decoder_input_ids=cfg.decoder_input_ids,
        callback=on_event,
    )
    trace.sequence = res["canvases"]
    trace.tokens_per_forward = res["stats"]["tokens_per_forward"]
    return trace, res


def first_divergence(ref: Trace, ours: Trace) -> str | None:
    """None when every step and the final sequence agree; else a sentence naming the first
    (canvas, step) and positions that differ."""
    for i, (r, o) in enumerate(zip(ref.steps, ours.steps)):
        if (r[0], r[1]) != (o[0], o[1]):
            return f"step record {i}: transformers at canvas {r[0]} step {r[1]}, engine at canvas {o[0]} step {o[1]}"
        for what, k in (("accepted mask", 4), ("argmax canvas", 2), ("next canvas", 3)):
            if not np.array_equal(r[k], o[k]):
                pos = np.nonzero(np.asarray(r[k]) != np.asarray(o[k]))[0].tolist()
                return (f"canvas {r[0]} step {r[1]}: {what} differs at positions {pos}: "
                        f"transformers {np.asarray(r[k])[pos].tolist()} engine {np.asarray(o[k])[pos].tolist()}")
    if len(ref.steps) != len(ours.steps):
        return f"transformers ran {len(ref.steps)} steps, engine {len(ours.steps)}"
    if not np.array_equal(ref.sequence, ours.sequence):
        return f"final sequences differ: transformers {ref.sequence.tolist()} engine {ours.sequence.tolist()}"
    return None


def _scaled(logits: np.ndarray, cfg: GenConfig, step: int) -> np.ndarray:
    """logits / t for `step` (from 0), in fp32 as the temperature processor computes it."""
    cur = cfg.max_denoising_steps - step
    t = np.float32(cfg.t_min) + np.float32(cfg.t_max - cfg.t_min) * (np.float32(cur) / np.float32(cfg.max_denoising_steps))
    return (logits / t).astype(np.float32)


def replay_logits(hf, engine_model, prompt: np.ndarray, ref: Trace, cfg: GenConfig, canvas: int, step: int):
    """Both forwards' raw logits [C, V] at (canvas, step), fed the same inputs: transformers' recorded
    canvases, with each side's own self-conditioning chain."""
    import torch
    from diffgemma import _core
    from transformers import DynamicCache

    C = engine_model.canvas_length
    steps = {(s[0], s[1]): s for s in ref.steps}
    committed = [[s for s in ref.steps if s[0] == c][-1][2] for c in range(canvas)]
    first = (cfg.decoder_input_ids if canvas == 0 and cfg.decoder_input_ids is not None
             else np.array([draw(SEED_OF[id(ref)], 0, canvas, 0, p) % engine_model.n_vocab for p in range(C)]))
    inputs = [first] + [steps[(canvas, k)][3] for k in range(step)]

    ctx = _core.Context(engine_model, n_ctx=512)
    ctx.encode(prompt)
    for c in committed:
        ctx.commit(c)
    cache = DynamicCache(config=hf.config.get_text_config(decoder=True))
    ids = lambda a: torch.tensor(np.asarray(a), dtype=torch.long)[None]  # noqa: E731
    pos = len(prompt)
    with torch.no_grad():
        hf.model.encoder(input_ids=ids(prompt), past_key_values=cache)
        for c in committed:
            hf.model.encoder(input_ids=ids(c), past_key_values=cache, position_ids=torch.arange(pos, pos + C)[None])
            pos += C
        dec_pos = torch.arange(pos, pos + C)[None]
        sc_e = sc_h = None
        for k, x in enumerate(inputs):
            le = ctx.denoise(x, sc_e)
            kw = {} if sc_h is None else {"self_conditioning_logits": torch.from_numpy(sc_h)[None]}
            lh = hf(past_key_values=cache, decoder_input_ids=ids(x), decoder_position_ids=dec_pos, **kw).logits[0].numpy()
            sc_e, sc_h = _scaled(le, cfg, k), _scaled(lh, cfg, k)
    return lh, le


SEED_OF: dict = {}  # id(trace) -> seed, for replay_logits


def explain_divergence(hf, engine_model, prompt, ref: Trace, ours: Trace, cfg: GenConfig, seed: int) -> str | None:
    """When the first divergence is an fp32 near-tie, a sentence saying so: the decision's margin
    at that position is smaller than the difference between the two forwards' logits there (both
    fed identical inputs). None when the divergence is not explained that way (a real bug)."""
    for r, o in zip(ref.steps, ours.steps):
        bad = [k for k in (4, 2, 3) if not np.array_equal(r[k], o[k])]
        if bad:
            break
    else:
        return None
    c, s = r[0], r[1]
    SEED_OF[id(ref)] = seed
    lh, le = replay_logits(hf, engine_model, prompt, ref, cfg, c, s)
    h, e = _scaled(lh, cfg, s), _scaled(le, cfg, s)
    diff = np.abs(h.astype(np.float64) - e).max(axis=-1)  # per position
    what = {4: "acceptance", 2: "argmax", 3: "sample"}[bad[0]]
    positions = np.nonzero(np.asarray(r[bad[0]]) != np.asarray(o[bad[0]]))[0]
    if what == "argmax":
        p = int(positions[0])
        top = np.sort(h[p].astype(np.float64))[-2:]
        margin = top[1] - top[0]
    elif what == "sample":
        p = int(positions[0])
        probs = np.exp(h[p].astype(np.float64) - h[p].max())
        cdf = np.cumsum(probs / probs.sum())
        u = uniform(seed, 1, c, s, p)
        margin = np.abs(cdf - u).min()
    else:
        def ent(x):
            x = x.astype(np.float64)
            lp = x - x.max(-1, keepdims=True)
            lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
            return -(np.exp(lp) * lp).sum(-1)
        eh = ent(h)
        order = np.argsort(eh, kind="stable")
        excess = np.cumsum(eh[order]) - eh[order]
        margin = np.abs(excess - cfg.entropy_bound).min()
        p = int(positions[0])
        diff = np.abs(eh - ent(e))  # entropies, not logits, decide acceptance
        diff = diff * len(eh)       # the cumulative sum adds up to C of them
    d = float(diff[p]) if what != "acceptance" else float(diff.max())
    if margin <= 2 * d and d < 1e-4:
        return (f"fp32 near-tie at canvas {c} step {s} position {p} ({what}): decision margin {margin:.3g} <= "
                f"2 x forward difference {d:.3g} between transformers' and our logits")
    return None
