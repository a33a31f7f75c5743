"""diffgemma.tiny (the numpy-only tiny checkpoint writer) and diffgemma.demo."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diffgemma.tiny import (
    TINY_VERSION,
    float32_to_bfloat16_bits,
    tiny_config,
    tiny_tensor_shapes,
    tiny_tensors,
    write_safetensors,
    write_tiny_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]
FILES = ["chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
         "tokenizer.json", "tokenizer_config.json"]


def _header(path: Path) -> dict:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0 and len(raw) >= 8 + n
    return json.loads(raw[8:8 + n])


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="module")
def hf_reference(ckpt, tmp_path_factory):
    """save_pretrained of a transformers-built model of the same config (the oracle for names,
    shapes and config serialisation)."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.DiffusionGemmaConfig.from_pretrained(str(ckpt))
    model = transformers.DiffusionGemmaForBlockDiffusion(cfg)
    out = tmp_path_factory.mktemp("hf_ref")
    model.save_pretrained(str(out))
    return out, model


def test_files(ckpt):
    assert sorted(p.name for p in ckpt.iterdir()) == FILES


def test_no_heavy_imports(tmp_path):
    """tiny.py runs with torch, transformers, tokenizers and safetensors unavailable."""
    code = (
        "import sys\n"
        "for m in ('torch', 'transformers', 'tokenizers', 'safetensors'): sys.modules[m] = None\n"
        "from diffgemma.tiny import write_tiny_checkpoint\n"
        "write_tiny_checkpoint(sys.argv[1])\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'tokenizers', 'safetensors') and sys.modules[m] is not None]\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env)
    assert sorted(p.name for p in tmp_path.iterdir()) == FILES


def test_safetensors_layout(ckpt):
    h = _header(ckpt / "model.safetensors")
    assert h.pop("__metadata__") == {"format": "pt"}
    names = list(h)
    assert names == sorted(names)
    shapes = tiny_tensor_shapes()
    assert {k: tuple(v["shape"]) for k, v in h.items()} == shapes
    offset = 0
    for name in names:
        assert h[name]["dtype"] == "F32"
        start, end = h[name]["data_offsets"]
        assert start == offset and end - start == 4 * int(np.prod(h[name]["shape"]))
        offset = end
    raw_len = (ckpt / "model.safetensors").stat().st_size
    assert raw_len == 8 + struct.unpack("<Q", (ckpt / "model.safetensors").read_bytes()[:8])[0] + offset
    # what the real checkpoint has, at tiny scale
    assert "model.decoder.self_conditioning.pre_norm.weight" in h
    assert "model.encoder.vision_tower.std_bias" in h and "model.encoder.vision_tower.std_scale" in h
    assert sum(k.startswith("model.encoder.language_model.layers.") and k.endswith("layer_scalar") for k in h) == 6
    assert "lm_head.weight" not in h
    assert "model.decoder.layers.5.self_attn.v_proj.weight" not in h  # full layer: K = V
    assert h["model.decoder.layers.5.self_attn.q_proj.weight"]["shape"] == [128, 64]
    assert h["model.decoder.layers.0.experts.gate_up_proj"]["shape"] == [8, 48, 64]
    assert len(h) == 161


def test_names_and_shapes_match_transformers(ckpt, hf_reference):
    ref_dir, _ = hf_reference
    ours, ref = _header(ckpt / "model.safetensors"), _header(ref_dir / "model.safetensors")
    assert set(ours) == set(ref)
    for k in ours:
        if k != "__metadata__":
            assert ours[k]["shape"] == ref[k]["shape"], k
            assert ours[k]["dtype"] == ref[k]["dtype"], k


def test_config_matches_transformers_serialisation(ckpt, hf_reference):
    ref_dir, _ = hf_reference
    ours = json.loads((ckpt / "config.json").read_text())
    ref = json.loads((ref_dir / "config.json").read_text())
    assert ours == ref
    assert ours["architectures"] == ["DiffusionGemmaForBlockDiffusion"] and ours["model_type"] == "diffusion_gemma"
    assert ours["text_config"]["per_layer_config"] == {"5": {"head_dim": 32, "num_key_value_heads": 1}}
    assert ours["canvas_length"] == 16 and ours["vision_config"]["model_type"] == "gemma4_vision"
    assert (ckpt / "config.json").read_text() == json.dumps(ours, indent=2, sort_keys=True) + "\n"


def test_loads_in_transformers_with_no_missing_keys(ckpt):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model, info = transformers.DiffusionGemmaForBlockDiffusion.from_pretrained(str(ckpt), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert not info["error_msgs"]
    expected = tiny_tensors(0)
    sd = model.state_dict()
    for name, value in expected.items():
        assert torch.equal(sd[name], torch.from_numpy(value)), name
    # the ties the real checkpoint relies on
    assert torch.equal(sd["lm_head.weight"], sd["model.decoder.embed_tokens.weight"])
    assert torch.equal(sd["model.encoder.language_model.layers.3.mlp.up_proj.weight"],
                       sd["model.decoder.layers.3.mlp.up_proj.weight"])
    # encoder and decoder layer scalars are separate buffers with their own values, around 0.5
    enc = model.model.encoder.language_model.layers[0].layer_scalar.item()
    dec = model.model.decoder.layers[0].layer_scalar.item()
    assert enc != dec and 0.4 <= enc <= 0.6 and 0.4 <= dec <= 0.6
    gc = model.generation_config
    assert (gc.t_min, gc.t_max, gc.max_denoising_steps, gc.confidence_threshold, gc.stability_threshold) == (0.4, 0.8, 48, 0.005, 1)
    assert list(gc.eos_token_id) == [1, 106, 50] and gc.max_new_tokens == 256
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[2, 105, 20, 30, 106, 107, 105, 40, 107]]),
                    decoder_input_ids=torch.full((1, 16), 4))
    assert out.logits.shape == (1, 16, 512)
    assert torch.isfinite(out.logits).all() and 0.05 < out.logits.std().item() < 5.0


def test_weight_scales():
    t = tiny_tensors(0)
    emb = t["model.decoder.embed_tokens.weight"]
    assert abs(float(emb.std()) - 0.02) < 0.002 and abs(float(emb.mean())) < 0.002
    norm = t["model.decoder.layers.2.input_layernorm.weight"]
    assert 0.9 < float(norm.mean()) < 1.1 and 0.05 < float(norm.std()) < 0.15
    assert 0.8 < float(t["model.decoder.layers.1.router.per_expert_scale"].mean()) < 1.2
    scal = [float(t[f"model.decoder.layers.{i}.layer_scalar"][0]) for i in range(6)]
    assert all(0.4 <= s <= 0.6 for s in scal) and len(set(scal)) == 6


def test_same_seed_same_bytes(ckpt, tmp_path):
    again = write_tiny_checkpoint(tmp_path / "a", seed=0)
    for name in FILES:
        assert (again / name).read_bytes() == (ckpt / name).read_bytes(), name
    other = write_tiny_checkpoint(tmp_path / "b", seed=1)
    assert (other / "model.safetensors").read_bytes() != (ckpt / "model.safetensors").read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (ckpt / "tokenizer.json").read_bytes()


def test_generation_config(ckpt):
    gc = json.loads((ckpt / "generation_config.json").read_text())
    assert gc == {
        "confidence_threshold": 0.005, "eos_token_id": [1, 106, 50], "max_denoising_steps": 48,
        "max_new_tokens": 256, "pad_token_id": 0,
        "sampler_config": {"_cls_name": "EntropyBoundSamplerConfig", "entropy_bound": 0.1},
        "stability_threshold": 1, "t_max": 0.8, "t_min": 0.4, "transformers_version": "5.23.0",
    }


def test_bfloat16_rounding_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = np.concatenate([
        rng.standard_normal(4096).astype(np.float32) * 10.0 ** rng.integers(-30, 30, 4096),
        np.array([0.0, -0.0, 1.0, 1.00390625, 1.01171875, 1.0 + 2**-8, 1.0 + 3 * 2**-8, 3.3895314e38,
                  3.4028235e38, 1e-40, -1e-45, np.inf, -np.inf], dtype=np.float32),
    ]).astype(np.float32)
    ours = float32_to_bfloat16_bits(x)
    ref = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(ours, ref)
    nan = float32_to_bfloat16_bits(np.array([np.nan], dtype=np.float32))
    assert (int(nan[0]) & 0x7F80) == 0x7F80 and (int(nan[0]) & 0x7F) != 0


def test_bfloat16_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import load_file

    d = write_tiny_checkpoint(tmp_path, seed=0, dtype="bfloat16")
    assert json.loads((d / "config.json").read_text())["dtype"] == "bfloat16"
    h = _header(d / "model.safetensors")
    assert {v["dtype"] for k, v in h.items() if k != "__metadata__"} == {"BF16"}
    loaded = load_file(str(d / "model.safetensors"))
    for name, value in tiny_tensors(0).items():
        assert loaded[name].dtype == torch.bfloat16
        assert torch.equal(loaded[name], torch.from_numpy(value).to(torch.bfloat16)), name
    model, info = transformers.DiffusionGemmaForBlockDiffusion.from_pretrained(str(d), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_write_safetensors_roundtrip(tmp_path):
    from safetensors.numpy import load_file

    tensors = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array([1.5], dtype=np.float32),
               "c.d": np.zeros((2, 1, 2), dtype=np.float32)}
    write_safetensors(tmp_path / "x.safetensors", tensors)
    got = load_file(str(tmp_path / "x.safetensors"))
    assert sorted(got) == ["a", "b", "c.d"]
    for k in tensors:
        assert np.array_equal(got[k], tensors[k])
    with pytest.raises(ValueError):
        write_safetensors(tmp_path / "y.safetensors", tensors, dtype="float16")


def test_tokenizer_loads_and_round_trips(ckpt):
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    assert tok.get_vocab_size(with_added_tokens=True) == tiny_config()["text_config"]["vocab_size"] == 512
    for piece, i in {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4, "<|tool_response>": 50,
                     "<|channel>": 100, "<channel|>": 101, "<|turn>": 105, "<turn|>": 106, "\n": 107,
                     "</s>": 212, "<0x00>": 238, "<0xFF>": 493}.items():
        assert tok.token_to_id(piece) == i, piece
    cfg = tiny_config()
    assert tok.id_to_token(cfg["boi_token_id"]) == "<|image>"
    assert tok.id_to_token(cfg["eoi_token_id"]) == "<image|>"
    assert tok.id_to_token(cfg["image_token_id"]) == "<|image|>"
    for text in ["Hello  world\n\n\tx", "你好 😀 🫩 ꙮ", "<bos><|turn>user\nHi<turn|>\n", "  a\n\n\n\nb  "]:
        ids = tok.encode(text).ids
        assert tok.decode(ids, skip_special_tokens=False) == text
    assert tok.encode("\U0001fae9").ids == [238 + b for b in "\U0001fae9".encode("utf-8")]


def test_tokenizer_equals_the_tokenizers_built_fixture(ckpt, tmp_path):
    """The hand-written JSON is byte-identical to what the tokenizers library serialises."""
    pytest.importorskip("tokenizers")
    if str(ROOT / "tests") not in sys.path:  # conftest.py's directory; normally already there
        sys.path.insert(0, str(ROOT / "tests"))
    from fixtures.tokenizer import write_gemma4_tokenizer

    write_gemma4_tokenizer(tmp_path, vocab_size=512)
    assert (tmp_path / "tokenizer.json").read_bytes() == (ckpt / "tokenizer.json").read_bytes()
    assert (tmp_path / "tokenizer_config.json").read_bytes() == (ckpt / "tokenizer_config.json").read_bytes()


def test_chat_template_renders(ckpt):
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(ckpt))
    msgs = [{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "<|channel>thought\nhmm<channel|>Hello"},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == ("<bos><|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\nHello<turn|>\n"
                    "<|turn>user\n<|image|>What is it?<turn|>\n<|turn>model\n")
    think = tok.apply_chat_template(msgs[1:2], tokenize=False, add_generation_prompt=False, enable_thinking=True)
    assert think == "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\nHi<turn|>\n"


def test_demo(tmp_path, monkeypatch, capsys):
    pytest.importorskip("gguf")
    try:
        import diffgemma.convert  # noqa: F401
    except ImportError as e:  # pragma: no cover - the converter ships with the package
        pytest.skip(f"diffgemma.convert not importable: {e}")
    from diffgemma import demo

    cache = tmp_path / "cache"
    monkeypatch.setenv("DIFFGEMMA_CACHE", str(cache))
    assert demo.default_cache_dir() == cache
    monkeypatch.setattr(demo, "find_cli", lambda: None)
    rc = demo.main([])
    out, err = capsys.readouterr()
    assert rc == 2 and "diffgemma-cli was not found" in err
    gguf_path = cache / "diffgemma-tiny-f32.gguf"
    model_dir = cache / "diffgemma-tiny"
    assert gguf_path.is_file() and str(gguf_path) in out and str(model_dir) in out
    ref = write_tiny_checkpoint(tmp_path / "ref")
    for name in FILES:
        assert (model_dir / name).read_bytes() == (ref / name).read_bytes(), name
    assert json.loads((model_dir / ".diffgemma-tiny.json").read_text())["tiny_version"] == TINY_VERSION

    import gguf

    reader = gguf.GGUFReader(str(gguf_path))
    assert reader.fields["tokenizer.ggml.model"].contents() == "gemma4"
    assert len(reader.fields["tokenizer.ggml.tokens"].contents()) == 512

    # a second run reuses both the checkpoint and the GGUF
    before = (gguf_path.stat().st_mtime_ns, (model_dir / "model.safetensors").stat().st_mtime_ns)
    assert demo.main(["--no-inspect"]) == 0
    assert (gguf_path.stat().st_mtime_ns, (model_dir / "model.safetensors").stat().st_mtime_ns) == before


def test_demo_runs_cli_when_found(tmp_path, monkeypatch, capsys):
    """With a stand-in diffgemma-cli on PATH the demo calls `diffgemma-cli --inspect FILE`."""
    from diffgemma import demo

    if os.name == "nt":
        pytest.skip("shell stand-in")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "args.txt"
    fake = bindir / "diffgemma-cli"
    fake.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ.get("PATH", ""))
    assert demo.find_cli() == fake
    monkeypatch.setattr(demo, "convert_checkpoint", lambda m, g, t: (g.write_bytes(b"GGUF"), 0)[1])
    assert demo.main(["--cache-dir", str(tmp_path / "c"), "--outtype", "q8_0"]) == 0
    gguf = str(tmp_path / "c" / "diffgemma-tiny-q8_0.gguf")
    inspect, generate = log.read_text().splitlines()
    assert inspect.split() == ["--inspect", gguf]
    assert generate.split()[:2] == ["-m", gguf] and "-n" in generate.split()
