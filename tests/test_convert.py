"""End-to-end tests of the HF -> GGUF converter on tiny transformers checkpoints.

Every output is read back with gguf-py's GGUFReader and checked against the layout of
shared/docs/gguf-layout.md (§1.1 keys, §2.1 tensors, §2.3 transformations, §3.1 tokenizer),
scaled to the tiny dimensions. Expected values come from independent sources: the spec of the
fixture, the safetensors files as loaded by `safetensors`/torch, and gguf-py's own vocab and
quantization code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")

from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import GGUFReader  # noqa: E402
from gguf import GGUFValueType as VT  # noqa: E402

from diffgemma.convert import ConvertOptions, convert, main  # noqa: E402
from fixtures.expected_layout import (  # noqa: E402
    ANY,
    FILE_TYPE,
    expected_kvs,
    expected_tensors,
    expected_type,
    n_rot_pairs,
)
from fixtures.models import FULL, SLIDING, SPECS, load_checkpoint_tensors  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
VISIBLE_TOKENS = {
    "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", '<|"|>'
}


# --- helpers -------------------------------------------------------------------------------------


def read_kvs(reader: GGUFReader) -> dict[str, tuple[list, object]]:
    """key -> (GGUF types, value), in file order, without the header pseudo-fields."""
    return {f.name: (list(f.types), f.contents()) for f in reader.fields.values() if not f.name.startswith("GGUF.")}


def n_vocab_of(model_dir: Path) -> int:
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    ids = set(tok["model"]["vocab"].values()) | {t["id"] for t in tok["added_tokens"]}
    return len(ids)


def expected_bytes(src: torch.Tensor, qtype: QT) -> bytes:
    """The GGUF bytes of an HF tensor, computed with torch (floats) and gguf-py (Q8_0)."""
    if qtype == QT.F32:
        return src.float().numpy().tobytes()
    if qtype == QT.F16:
        return src.to(torch.float16).numpy().tobytes()
    if qtype == QT.BF16:
        return src.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
    if qtype == QT.Q8_0:
        return gguf.quants.quantize(src.float().numpy(), QT.Q8_0).tobytes()
    raise AssertionError(qtype)


def tensors_by_name(reader: GGUFReader) -> dict:
    return {t.name: t for t in reader.tensors}


# --- metadata ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,outtype", [("tiny", "f32"), ("tiny", "f16"), ("tiny", "bf16"), ("tiny", "q8_0"), ("tiny_odd", "q8_0")]
)
def test_metadata_keys_types_values_in_layout_order(tiny_checkpoint, tiny_gguf, name, outtype):
    spec = SPECS[name]
    kvs = read_kvs(GGUFReader(tiny_gguf(name, outtype)))
    expected = expected_kvs(spec, outtype, name, n_vocab_of(tiny_checkpoint(name)))
    assert list(kvs) == [key for key, _, _ in expected]  # all 44, nothing else, §1.1 order
    for key, types, value in expected:
        got_types, got = kvs[key]
        assert got_types == types, key
        if value is not ANY:
            assert got == value, key


# --- tensors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny", "tiny_odd"])
@pytest.mark.parametrize("outtype", ["f32", "f16", "bf16", "q8_0"])
def test_tensor_names_shapes_types_and_order(tiny_checkpoint, tiny_gguf, name, outtype):
    spec = SPECS[name]
    reader = GGUFReader(tiny_gguf(name, outtype))
    expected = expected_tensors(spec, n_vocab_of(tiny_checkpoint(name)))
    n_swa = spec.layer_types.count(SLIDING)
    n_full = spec.layer_types.count(FULL)
    assert len(reader.tensors) == 7 + 23 * n_swa + 22 * n_full
    assert [t.name for t in reader.tensors] == [e[0] for e in expected]  # llama.cpp loader order
    for t, (gguf_name, ne, kind, _) in zip(reader.tensors, expected):
        assert tuple(int(x) for x in t.shape) == ne, gguf_name
        assert t.tensor_type == expected_type(kind, ne, outtype), gguf_name
    assert not any(t.name == "output.weight" or "vision" in t.name for t in reader.tensors)


def test_q8_0_file_quantizes_every_matrix_when_rows_allow(tiny_gguf):
    """tiny_odd's widths are multiples of 32, so as in the real Q8_0 file every 2-D/3-D tensor
    except the router is Q8_0 and everything else F32 (§4.2)."""
    reader = GGUFReader(tiny_gguf("tiny_odd", "q8_0"))
    for t in reader.tensors:
        matrix = len(t.shape) > 1 and not t.name.endswith("ffn_gate_inp.weight")
        assert t.tensor_type == (QT.Q8_0 if matrix else QT.F32), t.name


@pytest.mark.parametrize(
    "name,outtype",
    [("tiny", "f32"), ("tiny", "f16"), ("tiny", "bf16"), ("tiny", "q8_0"), ("tiny_odd", "q8_0"),
     ("tiny_bf16", "bf16"), ("tiny_bf16", "f32"), ("tiny_bf16", "f16"), ("tiny_bf16", "q8_0")],
)
def test_tensor_data_matches_checkpoint_bit_exactly(tiny_checkpoint, tiny_gguf, name, outtype):
    spec = SPECS[name]
    model_dir = tiny_checkpoint(name)
    n_vocab = n_vocab_of(model_dir)
    hf = load_checkpoint_tensors(model_dir)
    got = tensors_by_name(GGUFReader(tiny_gguf(name, outtype)))
    for gguf_name, _, _, src_name in expected_tensors(spec, n_vocab):
        if src_name is None and gguf_name == "rope_freqs.weight":
            continue  # generated; see test_rope_freqs
        t = got[gguf_name]
        src = hf[src_name]
        if gguf_name == "token_embd.weight":
            src = src[:n_vocab]
        assert t.data.tobytes() == expected_bytes(src, t.tensor_type), gguf_name
        if t.tensor_type == QT.Q8_0:
            # dequantized, the blocks equal gguf-py's own quantize+dequantize round trip
            ref = gguf.quants.dequantize(gguf.quants.quantize(src.float().numpy(), QT.Q8_0), QT.Q8_0)
            np.testing.assert_array_equal(gguf.quants.dequantize(t.data, QT.Q8_0), ref)


def test_bf16_source_to_bf16_is_a_bit_copy(tiny_checkpoint, tiny_gguf):
    hf = load_checkpoint_tensors(tiny_checkpoint("tiny_bf16"))
    t = tensors_by_name(GGUFReader(tiny_gguf("tiny_bf16", "bf16")))["blk.0.ffn_gate_up_exps.weight"]
    src = hf["model.decoder.layers.0.experts.gate_up_proj"]
    assert src.dtype == torch.bfloat16
    assert t.data.tobytes() == src.view(torch.int16).numpy().tobytes()


@pytest.mark.parametrize("name", ["tiny", "tiny_odd"])
def test_rope_freqs_reproduce_proportional_rope(tiny_gguf, name):
    spec = SPECS[name]
    t = tensors_by_name(GGUFReader(tiny_gguf(name, "q8_0")))["rope_freqs.weight"]
    n_rot = n_rot_pairs(spec)
    expected = np.array([1.0] * n_rot + [1e30] * (spec.global_head_dim // 2 - n_rot), dtype=np.float32)
    assert t.tensor_type == QT.F32
    np.testing.assert_array_equal(t.data, expected)


def test_encoder_and_decoder_scalars_land_in_their_own_tensors(tiny_checkpoint, tiny_gguf):
    spec = SPECS["tiny"]
    hf = load_checkpoint_tensors(tiny_checkpoint("tiny"))
    got = tensors_by_name(GGUFReader(tiny_gguf("tiny", "bf16")))
    for i in range(spec.num_hidden_layers):
        dec = hf[f"model.decoder.layers.{i}.layer_scalar"].numpy()
        enc = hf[f"model.encoder.language_model.layers.{i}.layer_scalar"].numpy()
        assert dec != enc  # the fixture makes them differ
        np.testing.assert_array_equal(got[f"blk.{i}.layer_output_scale.weight"].data, dec)
        np.testing.assert_array_equal(got[f"blk.{i}.enc_layer_output_scale.weight"].data, enc)


def test_norms_are_stored_without_plus_one(tiny_checkpoint, tiny_gguf):
    """Gemma 4 multiplies by w (not 1 + w); the converter must not shift norms (§2.3)."""
    hf = load_checkpoint_tensors(tiny_checkpoint("tiny"))
    got = tensors_by_name(GGUFReader(tiny_gguf("tiny", "f16")))
    np.testing.assert_array_equal(got["output_norm.weight"].data, hf["model.decoder.norm.weight"].numpy())
    np.testing.assert_array_equal(
        got["blk.2.attn_q_norm.weight"].data, hf["model.decoder.layers.2.self_attn.q_norm.weight"].numpy()
    )


# --- tokenizer -----------------------------------------------------------------------------------


def test_vocab_matches_gguf_py(tiny_checkpoint, tiny_gguf):
    """tokens/scores/types = gguf.LlamaHfVocab + the Gemma4 USER_DEFINED override; merges, special
    ids and chat template = gguf.SpecialVocab(load_merges=True) (gguf-layout.md §3.1, §7.2)."""
    pytest.importorskip("transformers")
    model_dir = tiny_checkpoint("tiny")
    vocab = gguf.LlamaHfVocab(model_dir)
    tokens, scores, types = [], [], []
    for text, score, toktype in vocab.all_tokens():
        tokens.append(text.decode("utf-8"))
        scores.append(score)
        types.append(int(gguf.TokenType.USER_DEFINED if text.decode() in VISIBLE_TOKENS else toktype))
    special = gguf.SpecialVocab(model_dir, load_merges=True)

    kvs = read_kvs(GGUFReader(tiny_gguf("tiny", "bf16")))
    assert kvs["tokenizer.ggml.tokens"][1] == tokens
    assert kvs["tokenizer.ggml.scores"][1] == scores
    assert kvs["tokenizer.ggml.token_type"][1] == types
    assert kvs["tokenizer.ggml.merges"][1] == special.merges
    key = {"unk": "unknown", "pad": "padding", "sep": "seperator"}
    for typ, token_id in special.special_token_ids.items():
        assert kvs[f"tokenizer.ggml.{key.get(typ, typ)}_token_id"][1] == token_id
    assert kvs["tokenizer.chat_template"][1] == special.chat_template
    assert special.add_special_token == {}  # so the only add_* keys are the two Gemma4 forces
    # The override really applies to this vocabulary (the fixture has these tokens at their real ids).
    assert types[tokens.index("<|channel>")] == gguf.TokenType.USER_DEFINED
    assert types[tokens.index("<turn|>")] == gguf.TokenType.CONTROL
    assert types[tokens.index("<0x0A>")] == gguf.TokenType.BYTE


def test_chat_template_is_copied_verbatim(tiny_checkpoint, tiny_gguf):
    template = (tiny_checkpoint("tiny") / "chat_template.jinja").read_text(encoding="utf-8")
    assert read_kvs(GGUFReader(tiny_gguf("tiny", "f32")))["tokenizer.chat_template"][1] == template


# --- inputs: sharding and config spellings ------------------------------------------------------


def test_sharded_checkpoint_gives_the_same_file(tiny_checkpoint, tmp_path):
    sharded = tiny_checkpoint("tiny_sharded")
    assert len(list(sharded.glob("*.safetensors"))) > 1 and (sharded / "model.safetensors.index.json").is_file()
    outs = []
    for name in ("tiny", "tiny_sharded"):
        out = tmp_path / f"{name}.gguf"
        convert(ConvertOptions(tiny_checkpoint(name), out, outtype="q8_0", name="same", progress=False))
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def _copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("flat", [False, True], ids=["nested", "flat"])
def test_released_config_spelling_gives_the_same_file(tiny_checkpoint, tmp_path, flat):
    """global_head_dim / num_global_key_value_heads (released config.json) and transformers 5.x's
    per_layer_config (our fixtures) describe the same model (§1.3.1); a flat config is accepted too."""
    spec = SPECS["tiny"]
    model_dir = _copy_checkpoint(tiny_checkpoint("tiny"), tmp_path / "released")
    config = json.loads((model_dir / "config.json").read_text())
    text = config["text_config"]
    assert "per_layer_config" in text and "global_head_dim" not in text
    del text["per_layer_config"]
    text["global_head_dim"] = spec.global_head_dim
    text["num_global_key_value_heads"] = spec.num_global_key_value_heads
    if flat:
        config.update(config.pop("text_config"))
        config["architectures"] = ["DiffusionGemmaForBlockDiffusion"]
    (model_dir / "config.json").write_text(json.dumps(config))

    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    convert(ConvertOptions(tiny_checkpoint("tiny"), a, outtype="bf16", name="x", progress=False))
    convert(ConvertOptions(model_dir, b, outtype="bf16", name="x", progress=False))
    assert a.read_bytes() == b.read_bytes()


def test_older_architecture_name_is_accepted(tiny_checkpoint, tmp_path):
    model_dir = _copy_checkpoint(tiny_checkpoint("tiny"), tmp_path / "old")
    config = json.loads((model_dir / "config.json").read_text())
    config["architectures"] = ["DiffusionGemma4ModelForBlockDiffusion"]
    (model_dir / "config.json").write_text(json.dumps(config))
    assert main([str(model_dir), "--outfile", str(tmp_path / "o.gguf"), "--outtype", "f16", "--quiet"]) == 0


# --- options -------------------------------------------------------------------------------------


def test_dry_run_lists_everything_and_writes_nothing(tiny_checkpoint, tiny_gguf, tmp_path, capsys):
    out = tmp_path / "never.gguf"
    argv = [str(tiny_checkpoint("tiny")), "--outfile", str(out), "--outtype", "q8_0", "--dry-run", "--name", "tiny"]
    assert main(argv) == 0
    assert not out.exists() and list(tmp_path.iterdir()) == []
    listing = capsys.readouterr().out
    reader = GGUFReader(tiny_gguf("tiny", "q8_0"))
    lines = {line.split()[0]: line for line in listing.splitlines() if line.startswith("  ")}
    kvs = read_kvs(reader)
    assert f"{len(kvs)} metadata keys" in listing
    for key, (types, _) in kvs.items():
        assert key in lines and VT(types[0]).name in lines[key], key
    assert f"{len(reader.tensors)} tensors" in listing
    for t in reader.tensors:
        fields = lines[t.name].split()
        assert fields[1] == "x".join(str(int(n)) for n in t.shape)
        assert fields[2] == t.tensor_type.name
        assert int(fields[3].replace(",", "")) == t.n_bytes


def test_dry_run_needs_no_outfile(tiny_checkpoint, capsys):
    assert main([str(tiny_checkpoint("tiny")), "--dry-run"]) == 0
    assert "token_embd.weight" in capsys.readouterr().out


def test_with_diffusion_params_adds_the_six_eb_keys(tiny_checkpoint, tmp_path):
    model_dir = _copy_checkpoint(tiny_checkpoint("tiny"), tmp_path / "m")
    gen = json.loads((model_dir / "generation_config.json").read_text())
    gen.update(max_denoising_steps=32, t_min=0.3, t_max=0.9, stability_threshold=2, confidence_threshold=0.01)
    gen["sampler_config"]["entropy_bound"] = 0.25
    (model_dir / "generation_config.json").write_text(json.dumps(gen))
    out = tmp_path / "o.gguf"
    assert main([str(model_dir), "--outfile", str(out), "--with-diffusion-params", "--quiet"]) == 0
    kvs = read_kvs(GGUFReader(out))
    eb = {k: v for k, v in kvs.items() if k.startswith("diffusion.eb_")}
    f32 = lambda x: float(np.float32(x))  # noqa: E731
    assert eb == {
        "diffusion.eb_max_steps": ([VT.UINT32], 32),
        "diffusion.eb_t_min": ([VT.FLOAT32], f32(0.3)),
        "diffusion.eb_t_max": ([VT.FLOAT32], f32(0.9)),
        "diffusion.eb_entropy_bound": ([VT.FLOAT32], f32(0.25)),
        "diffusion.eb_stability_threshold": ([VT.UINT32], 2),
        "diffusion.eb_confidence_threshold": ([VT.FLOAT32], f32(0.01)),
    }
    keys = list(kvs)
    assert keys[keys.index("diffusion.canvas_length") + 1 : keys.index("tokenizer.ggml.model")] == list(eb)
    assert len(kvs) == 50


def test_diffusion_params_default_like_transformers_when_unset(tiny_checkpoint, tmp_path):
    """A freshly saved generation_config.json has nulls; transformers then uses its defaults."""
    model_dir = _copy_checkpoint(tiny_checkpoint("tiny"), tmp_path / "m")
    (model_dir / "generation_config.json").write_text(json.dumps({"t_min": None, "sampler_config": None}))
    out = tmp_path / "o.gguf"
    assert main([str(model_dir), "--outfile", str(out), "--with-diffusion-params", "--quiet"]) == 0
    kvs = read_kvs(GGUFReader(out))
    assert [kvs[k][1] for k in kvs if k.startswith("diffusion.eb_")] == [
        48, float(np.float32(0.4)), float(np.float32(0.8)), float(np.float32(0.1)), 1, float(np.float32(0.005))
    ]


def test_no_diffusion_params_by_default(tiny_gguf):
    assert not any(k.startswith("diffusion.eb_") for k in read_kvs(GGUFReader(tiny_gguf("tiny", "f32"))))


def test_force_overwrites(tiny_checkpoint, tmp_path):
    out = tmp_path / "o.gguf"
    out.write_bytes(b"old")
    assert main([str(tiny_checkpoint("tiny")), "--outfile", str(out), "--force", "--quiet"]) == 0
    assert GGUFReader(out).tensors


def test_default_name_is_the_model_directory(tiny_checkpoint, tmp_path):
    model_dir = tiny_checkpoint("tiny")
    out = tmp_path / "o.gguf"
    assert main([str(model_dir), "--outfile", str(out), "--quiet"]) == 0
    kvs = read_kvs(GGUFReader(out))
    assert kvs["general.name"][1] == model_dir.name
    assert kvs["general.file_type"][1] == FILE_TYPE["bf16"]  # the default --outtype


def test_progress_lines_on_a_non_tty_stderr(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "o.gguf"
    assert main([str(tiny_checkpoint("tiny")), "--outfile", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    n = len(GGUFReader(out).tensors)
    progress = [line for line in err if line.startswith("[")]
    assert len(progress) == n and "\r" not in "".join(err)
    assert progress[-1].startswith(f"[{n}/{n}] 100.0%") and "MB/s" in progress[-1]
    assert err[-1] == f"wrote {out}"


def test_python_dash_m_entry_point(tiny_checkpoint, tmp_path):
    out = tmp_path / "o.gguf"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "python"))
    result = subprocess.run(
        [sys.executable, "-m", "diffgemma.convert", str(tiny_checkpoint("tiny")), "--outfile", str(out),
         "--outtype", "q8_0"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(GGUFReader(out).tensors) == 144


def test_converter_runs_with_only_numpy_and_gguf(tiny_checkpoint, tmp_path):
    """torch, safetensors, transformers and tokenizers are test oracles, not run-time dependencies."""
    model_dir = str(tiny_checkpoint("tiny"))
    out, ref = tmp_path / "o.gguf", tmp_path / "ref.gguf"
    blocked = ["torch", "safetensors", "transformers", "tokenizers", "sentencepiece", "huggingface_hub"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None  # importing them now fails\n"
        "from diffgemma.convert import main\n"
        f"sys.exit(main([{model_dir!r}, '--outfile', {str(out)!r}, '--outtype', 'q8_0', '--quiet']))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "python"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    convert(ConvertOptions(Path(model_dir), ref, outtype="q8_0", progress=False))
    assert out.read_bytes() == ref.read_bytes()


def test_additional_chat_templates_are_stored_like_gguf_py_stores_them(tiny_checkpoint, tmp_path):
    model_dir = _copy_checkpoint(tiny_checkpoint("tiny"), tmp_path / "m")
    (model_dir / "additional_chat_templates").mkdir()
    (model_dir / "additional_chat_templates" / "tool_use.jinja").write_text("{{ 'tools' }}")
    out = tmp_path / "o.gguf"
    assert main([str(model_dir), "--outfile", str(out), "--quiet"]) == 0
    got = {k: v for k, v in read_kvs(GGUFReader(out)).items() if k.startswith("tokenizer.chat_template")}

    writer = gguf.GGUFWriter(None, "diffusion-gemma")
    writer.add_chat_template(gguf.SpecialVocab(model_dir).chat_template)
    expected = {k: v.value for k, v in writer.kv_data[0].items() if k.startswith("tokenizer.chat_template")}
    assert {k: v[1] for k, v in got.items()} == expected
    assert list(got) == list(expected)
