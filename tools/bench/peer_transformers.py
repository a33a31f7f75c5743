"""The transformers peer of diffgemma-bench (issue 7, BENCHMARKS.md): one denoising step of
DiffusionGemmaForBlockDiffusion at the real model's per-layer shapes, random weights, on CPU.

    python tools/bench/peer_transformers.py --threads 2 --dtype bfloat16 --layers 3 --runs 5

Builds the model with L layers (real shapes: hidden 2816, 128 experts top-8 of width 704, vocab
262144; layers sliding except the last, which transformers makes full attention; tiny vision
tower), encodes a --prefix-token prompt, then times `model(decoder_input_ids=canvas,
self_conditioning_logits=...)` for a 256-token canvas: the self-conditioned decoder step with the
LM head (--runs timed after one warm-up). Forward hooks on the decoder layers time every layer
directly, so the split needs no extrapolation between models: per sliding / full layer = the
median of their layer times, fixed = median step - the layers' medians, and 30 layers = fixed +
25 sliding + 5 full. Also times the LM head (bf16 matmul + softcap) alone. Prints one JSON object.
(Subtracting the step times of two models with different layer counts is not reliable here: the
fixed part differs between model instances by more than a layer costs.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def build(layers: int, dtype):
    import torch
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    from diffgemma.tiny import tiny_config

    cfg = tiny_config("bfloat16")
    t = cfg["text_config"]
    layer_types = ["full_attention" if i % 6 == 5 else "sliding_attention" for i in range(layers)]
    t.update(
        vocab_size=262144, hidden_size=2816, intermediate_size=2112, moe_intermediate_size=704, num_experts=128,
        top_k_experts=8, num_hidden_layers=layers, num_attention_heads=16, num_key_value_heads=8, head_dim=256,
        sliding_window=1024, layer_types=layer_types,
        per_layer_config={str(i): {"head_dim": 512, "num_key_value_heads": 2}
                          for i, lt in enumerate(layer_types) if lt == "full_attention"},
    )
    cfg["canvas_length"] = 256
    config = DiffusionGemmaConfig.from_dict(cfg)
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = DiffusionGemmaForBlockDiffusion(config).eval()
    finally:
        torch.set_default_dtype(old)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
    return model


def time_step(model, prefix: int, runs: int, layer_times: dict | None = None) -> list[float]:
    import torch
    from transformers import DynamicCache

    started = {}
    if layer_times is not None:
        for i, layer in enumerate(model.model.decoder.layers):
            layer_times[i] = []
            layer.register_forward_pre_hook(lambda mod, args, i=i: started.__setitem__(i, time.perf_counter()))
            layer.register_forward_hook(lambda mod, args, out, i=i: layer_times[i].append(time.perf_counter() - started[i]))
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(5, 262144, (1, prefix), generator=g)
    canvas = torch.randint(5, 262144, (1, 256), generator=g)
    dtype = next(model.parameters()).dtype
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    pos = torch.arange(prefix, prefix + 256)[None]
    times = []
    with torch.no_grad():
        model.model.encoder(input_ids=prompt, past_key_values=cache)
        sc = model(past_key_values=cache, decoder_input_ids=canvas, decoder_position_ids=pos).logits.to(dtype)
        if layer_times is not None:
            for v in layer_times.values():
                v.clear()
        for r in range(runs + 1):
            t0 = time.perf_counter()
            model(past_key_values=cache, decoder_input_ids=canvas, decoder_position_ids=pos,
                  self_conditioning_logits=sc)
            if r:
                times.append(time.perf_counter() - t0)
    if layer_times is not None:  # drop the warm-up pass of each layer
        for v in layer_times.values():
            del v[0]
    return times


def time_lm_head(dtype, runs: int) -> float:
    import torch

    x = torch.randn(256, 2816, dtype=dtype)
    w = torch.randn(262144, 2816, dtype=dtype) * 0.02
    times = []
    with torch.no_grad():
        for r in range(runs + 1):
            t0 = time.perf_counter()
            y = torch.nn.functional.linear(x, w).float()
            torch.tanh(y / 30.0) * 30.0
            if r:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--layers", type=int, default=3, help="layers of the model (the last is full attention)")
    ap.add_argument("--prefix", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    import transformers

    out = {"threads": a.threads, "dtype": a.dtype, "prefix": a.prefix, "layers": a.layers, "torch": torch.__version__,
           "transformers": transformers.__version__}
    model = build(a.layers, dtype)
    kinds = model.config.get_text_config(decoder=True).layer_types
    layer_times: dict = {}
    runs = time_step(model, a.prefix, a.runs, layer_times)
    del model
    out["step_runs_s"] = runs
    out["step_s"] = statistics.median(runs)
    med = {i: statistics.median(v) for i, v in layer_times.items()}
    out["layer_s"] = {f"{i}:{kinds[i]}": round(med[i], 4) for i in med}
    sliding = [med[i] for i in med if kinds[i] == "sliding_attention"]
    full = [med[i] for i in med if kinds[i] == "full_attention"]
    out["sliding_layer_s"] = statistics.median(sliding) if sliding else None
    out["full_layer_s"] = statistics.median(full) if full else None
    out["fixed_s"] = out["step_s"] - sum(med.values())
    if sliding and full:
        out["extrapolated_30_layers_s"] = out["fixed_s"] + 25 * out["sliding_layer_s"] + 5 * out["full_layer_s"]
    out["lm_head_s"] = time_lm_head(dtype, a.runs)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
