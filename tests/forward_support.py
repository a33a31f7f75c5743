"""Support for the forward-pass tests: the engine module, transformers references (fp32 and
fp64, eager attention and eager experts, model-spec §10.2 item 1), transformers run on weights
dequantized from a GGUF (testing.md), the shared scenario, and a GGUF rewriter for variant and
bad-file tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def core():
    """diffgemma._core, the compiled module of the installed package."""
    from diffgemma import _core

    return _core


# ---------------------------------------------------------------------------------------------
# The scenario every parity test runs (model-spec §4.4): a prompt longer than the sliding window,
# two committed canvases, then a denoise step on a third canvas without and with self-conditioning.


@dataclass
class Scenario:
    prompt: np.ndarray    # [P] int64
    commits: list         # two canvases [C] committed after the prompt
    canvas: np.ndarray    # [C] the compared step's canvas
    sc_logits: np.ndarray  # [C, V] float32 self-conditioning input


def make_scenario(vocab: int, window: int, canvas_length: int, seed: int = 0) -> Scenario:
    rng = np.random.default_rng(seed)
    P = 2 * window + 5
    prompt = rng.integers(0, vocab, P)
    commits = [rng.integers(0, vocab, canvas_length) for _ in range(2)]
    canvas = rng.integers(0, vocab, canvas_length)
    sc = (4.0 * rng.standard_normal((canvas_length, vocab))).astype(np.float32)
    return Scenario(prompt, commits, canvas, sc)


@dataclass
class Result:
    kv: list            # per layer (K, V), each [n_kv, len, head_dim] float64
    logits: np.ndarray  # [C, V] first step (no self-conditioning)
    logits_sc: np.ndarray  # [C, V] with sc_logits


# ---------------------------------------------------------------------------------------------
# transformers side


def hf_model(checkpoint: Path, dtype: str = "float32", gguf_path: Path | None = None):
    import torch
    from transformers import DiffusionGemmaForBlockDiffusion
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = DiffusionGemmaForBlockDiffusion.from_pretrained(
        checkpoint, dtype=getattr(torch, dtype), attn_implementation="eager", experts_implementation="eager"
    ).eval()
    if gguf_path is not None:
        load_gguf_weights(model, gguf_path)
    return model


_GLOBAL = {
    "token_embd.weight": ["model.decoder.embed_tokens.weight", "model.encoder.language_model.embed_tokens.weight",
                          "lm_head.weight"],
    "output_norm.weight": ["model.decoder.norm.weight", "model.encoder.language_model.norm.weight"],
    "self_cond_pre_norm.weight": ["model.decoder.self_conditioning.pre_norm.weight"],
    "self_cond_gate.weight": ["model.decoder.self_conditioning.gate_proj.weight"],
    "self_cond_up.weight": ["model.decoder.self_conditioning.up_proj.weight"],
    "self_cond_down.weight": ["model.decoder.self_conditioning.down_proj.weight"],
}
_LAYER = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "post_attention_norm.weight": "post_attention_layernorm.weight",
    "ffn_norm.weight": "pre_feedforward_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
    "post_ffw_norm_1.weight": "post_feedforward_layernorm_1.weight",
    "pre_ffw_norm_2.weight": "pre_feedforward_layernorm_2.weight",
    "ffn_gate_inp.weight": "router.proj.weight",
    "ffn_gate_inp.scale": "router.scale",
    "ffn_down_exps.scale": "router.per_expert_scale",
    "ffn_gate_up_exps.weight": "experts.gate_up_proj",
    "ffn_down_exps.weight": "experts.down_proj",
    "post_ffw_norm_2.weight": "post_feedforward_layernorm_2.weight",
    "post_ffw_norm.weight": "post_feedforward_layernorm.weight",
}


def load_gguf_weights(model, gguf_path: Path) -> None:
    """Overwrite every text weight of `model` with the GGUF's tensor, dequantized by gguf-py: the
    reference for BF16/F16/Q8_0 files is transformers on exactly the weights the engine reads."""
    import gguf
    import torch

    params = dict(model.named_parameters(remove_duplicate=False))
    params.update(dict(model.named_buffers(remove_duplicate=False)))
    reader = gguf.GGUFReader(str(gguf_path))
    # NVFP4 weights decode without their second-level scale: `<name>.scale` ([1], or [E] for
    # stacked experts) multiplies them (nvfp4.md §3.6). ffn_down_exps.scale is not one of them: it
    # is the router's per-expert scale (with the down projection's second-level scale folded in).
    types = {t.name: t.tensor_type for t in reader.tensors}
    second_level = {}
    for t in reader.tensors:
        weight = t.name[: -len(".scale")] + ".weight"
        if t.name.endswith(".scale") and types.get(weight) == gguf.GGMLQuantizationType.NVFP4 \
                and not t.name.endswith("ffn_down_exps.scale"):
            second_level[weight] = np.array(t.data, dtype=np.float32).reshape(-1)
    for t in reader.tensors:
        name = t.name
        values = np.array(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)  # owned, writable
        if name == "rope_freqs.weight" or name[: -len(".scale")] + ".weight" in second_level:
            continue
        if name in second_level:
            s = second_level[name]
            values = values * (s[0] if s.size == 1 else s.reshape((-1,) + (1,) * (values.ndim - 1)))
        targets = _GLOBAL.get(name)
        if targets is None:
            blk, idx, rest = name.split(".", 2)
            assert blk == "blk", name
            if rest == "layer_output_scale.weight":
                targets = [f"model.decoder.layers.{idx}.layer_scalar"]
            elif rest == "enc_layer_output_scale.weight":
                targets = [f"model.encoder.language_model.layers.{idx}.layer_scalar"]
            else:
                hf = _LAYER[rest]
                targets = [f"model.decoder.layers.{idx}.{hf}", f"model.encoder.language_model.layers.{idx}.{hf}"]
        for target in targets:
            p = params[target]
            with torch.no_grad():
                p.copy_(torch.from_numpy(values.reshape(p.shape)).to(p.dtype))


def hf_run(model, sc: Scenario, layer_outputs: list | None = None) -> Result:
    """The scenario through transformers with a DynamicCache (model-spec §10.2 item 1). With
    `layer_outputs`, appends each decoder layer's output of the first (unconditioned) step."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    dtype = next(model.parameters()).dtype
    ids = lambda a: torch.tensor(np.asarray(a), dtype=torch.long)[None]  # noqa: E731
    with torch.no_grad():
        model.model.encoder(input_ids=ids(sc.prompt), past_key_values=cache)
        pos = len(sc.prompt)
        for c in sc.commits:  # re-encoded at the positions where it was denoised
            model.model.encoder(input_ids=ids(c), past_key_values=cache,
                                position_ids=torch.arange(pos, pos + len(c))[None])
            pos += len(c)
        dec_pos = torch.arange(pos, pos + len(sc.canvas))[None]
        hooks = []
        if layer_outputs is not None:
            for layer in model.model.decoder.layers:
                hooks.append(layer.register_forward_hook(
                    lambda mod, args, out: layer_outputs.append((out[0] if isinstance(out, tuple) else out)[0].double().numpy())))
        logits = model(past_key_values=cache, decoder_input_ids=ids(sc.canvas), decoder_position_ids=dec_pos).logits
        for h in hooks:
            h.remove()
        scl = torch.from_numpy(sc.sc_logits).to(dtype)[None]
        logits_sc = model(past_key_values=cache, decoder_input_ids=ids(sc.canvas), decoder_position_ids=dec_pos,
                          self_conditioning_logits=scl).logits
    kv = [(layer.keys[0].double().numpy(), layer.values[0].double().numpy()) for layer in cache.layers]
    return Result(kv, logits[0].double().numpy(), logits_sc[0].double().numpy())


# ---------------------------------------------------------------------------------------------
# engine side


def engine_run(gguf_path: Path, sc: Scenario, n_threads: int = 2, n_batch: int = 0,
               layer_outputs: list | None = None) -> Result:
    c = core()
    model = c.Model.load(str(gguf_path), n_threads=n_threads)
    ctx = c.Context(model, n_ctx=256, n_batch=n_batch, record_hidden=layer_outputs is not None)
    ctx.encode(sc.prompt)
    for canvas in sc.commits:
        ctx.commit(canvas)
    logits = ctx.denoise(sc.canvas)
    if layer_outputs is not None:
        layer_outputs += [ctx.hidden(il) for il in range(model.n_layer)]
    logits_sc = ctx.denoise(sc.canvas, sc.sc_logits)
    kv = [ctx.kv(il) for il in range(model.n_layer)]
    return Result(kv, logits, logits_sc)


def max_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def kv_err(a: Result, b: Result) -> float:
    worst = 0.0
    for (ka, va), (kb, vb) in zip(a.kv, b.kv):
        assert ka.shape == kb.shape and va.shape == vb.shape, (ka.shape, kb.shape)
        worst = max(worst, max_err(ka, kb), max_err(va, vb))
    return worst


# ---------------------------------------------------------------------------------------------
# GGUF rewriting (variants and broken files)


def rewrite_gguf(src: Path, dst: Path, *, arch: str | None = None, kv_edit=None, tensors_edit=None) -> Path:
    """Copy `src` (a plain-typed GGUF) to `dst`. kv_edit(dict key -> (value, vtype, subtype)) and
    tensors_edit(dict name -> ndarray in numpy shape, ordered) may change metadata and tensors;
    a value (uint8 bytes array, GGMLQuantizationType) stores raw blocks of that type."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    fields = {}
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = f.types[0]
        sub = f.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        fields[key] = (f.contents(), vtype, sub)
    src_arch = reader.fields["general.architecture"].contents()
    tensors = {t.name: np.array(t.data) for t in reader.tensors}
    if kv_edit:
        kv_edit(fields)
    if tensors_edit:
        tensors_edit(tensors)
    writer = gguf.GGUFWriter(str(dst), arch or src_arch)
    for key, (val, vtype, sub) in fields.items():
        writer.add_key_value(key, val, vtype, sub_type=sub)
    for name, data in tensors.items():
        if isinstance(data, tuple):
            writer.add_tensor(name, data[0], raw_dtype=data[1])
        else:
            writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst
