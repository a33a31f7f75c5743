"""Converter failures a user can cause: one clean error line, exit status 1, no traceback, and no
output file (or temporary file) left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from diffgemma.convert import ConvertError, ConvertOptions, convert, main  # noqa: E402
from diffgemma.convert import tensor_data  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def model_copy(tiny_checkpoint, tmp_path):
    """A writable copy of the tiny checkpoint to break."""
    return Path(shutil.copytree(tiny_checkpoint("tiny"), tmp_path / "model"))


@pytest.fixture
def out_dir(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    return d


def run_failing(argv: list[str], capsys) -> str:
    """Run main in-process; assert a one-line error and exit 1; return the message."""
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("diffgemma-convert: error: ")
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def assert_nothing_written(out_dir: Path) -> None:
    assert list(out_dir.iterdir()) == []  # neither the .gguf nor a temporary .part file


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_wrong_architecture(model_copy, out_dir, capsys):
    edit_json(model_copy / "config.json", lambda c: c.update(architectures=["Gemma3ForCausalLM"]))
    msg = run_failing([str(model_copy), "--outfile", str(out_dir / "o.gguf")], capsys)
    assert "unsupported architecture" in msg and "Gemma3ForCausalLM" in msg
    assert_nothing_written(out_dir)


def test_missing_tensor_is_named(model_copy, out_dir, capsys):
    from safetensors.numpy import load_file, save_file

    victim = "model.decoder.layers.3.router.per_expert_scale"
    path = model_copy / "model.safetensors"
    tensors = load_file(path)
    del tensors[victim]
    save_file(tensors, path, metadata={"format": "pt"})
    msg = run_failing([str(model_copy), "--outfile", str(out_dir / "o.gguf")], capsys)
    assert f"missing tensor {victim}" in msg and "blk.3.ffn_down_exps.scale" in msg
    assert_nothing_written(out_dir)


def test_missing_encoder_scalar_is_named(model_copy, out_dir, capsys):
    from safetensors.numpy import load_file, save_file

    victim = "model.encoder.language_model.layers.5.layer_scalar"
    path = model_copy / "model.safetensors"
    tensors = load_file(path)
    del tensors[victim]
    save_file(tensors, path)
    msg = run_failing([str(model_copy), "--outfile", str(out_dir / "o.gguf")], capsys)
    assert victim in msg
    assert_nothing_written(out_dir)


def test_truncated_safetensors(model_copy, out_dir, capsys):
    path = model_copy / "model.safetensors"
    os.truncate(path, path.stat().st_size - 100)
    msg = run_failing([str(model_copy), "--outfile", str(out_dir / "o.gguf")], capsys)
    assert "truncated" in msg and "model.safetensors" in msg
    assert_nothing_written(out_dir)


def test_missing_shard(tiny_checkpoint, tmp_path, out_dir, capsys):
    model = Path(shutil.copytree(tiny_checkpoint("tiny_sharded"), tmp_path / "model"))
    shard = sorted(model.glob("model-*.safetensors"))[1]
    shard.unlink()
    msg = run_failing([str(model), "--outfile", str(out_dir / "o.gguf")], capsys)
    assert shard.name in msg and "missing" in msg
    assert_nothing_written(out_dir)


def test_missing_tokenizer(model_copy, out_dir, capsys):
    (model_copy / "tokenizer.json").unlink()
    msg = run_failing([str(model_copy), "--outfile", str(out_dir / "o.gguf")], capsys)
    assert "tokenizer.json" in msg
    assert_nothing_written(out_dir)


def test_missing_config(model_copy, out_dir, capsys):
    (model_copy / "config.json").unlink()
    msg = run_failing([str(model_copy), "--outfile", str(out_dir / "o.gguf")], capsys)
    assert "config.json" in msg
    assert_nothing_written(out_dir)


def test_missing_model_directory(tmp_path, out_dir, capsys):
    msg = run_failing([str(tmp_path / "nope"), "--outfile", str(out_dir / "o.gguf")], capsys)
    assert "does not exist" in msg


def test_shape_disagreeing_with_config(model_copy, out_dir, capsys):
    edit_json(model_copy / "config.json", lambda c: c["text_config"].update(moe_intermediate_size=32))
    msg = run_failing([str(model_copy), "--outfile", str(out_dir / "o.gguf")], capsys)
    assert "experts.gate_up_proj" in msg and "shape" in msg
    assert_nothing_written(out_dir)


def test_output_exists_without_force(tiny_checkpoint, out_dir, capsys):
    out = out_dir / "o.gguf"
    out.write_bytes(b"keep me")
    msg = run_failing([str(tiny_checkpoint("tiny")), "--outfile", str(out)], capsys)
    assert "--force" in msg
    assert out.read_bytes() == b"keep me"


def test_outfile_required_without_dry_run(tiny_checkpoint, capsys):
    assert "--outfile" in run_failing([str(tiny_checkpoint("tiny"))], capsys)


def test_failure_while_writing_leaves_nothing(tiny_checkpoint, out_dir, monkeypatch):
    calls = {"n": 0}
    real = tensor_data.convert_chunk

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:
            raise ConvertError("simulated failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(tensor_data, "convert_chunk", failing)
    with pytest.raises(ConvertError, match="simulated"):
        convert(ConvertOptions(tiny_checkpoint("tiny"), out_dir / "o.gguf", outtype="q8_0", progress=False))
    assert calls["n"] == 20
    assert_nothing_written(out_dir)


def test_error_exit_status_from_a_real_process(model_copy, out_dir):
    edit_json(model_copy / "config.json", lambda c: c.update(architectures=["LlamaForCausalLM"]))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "python"))
    result = subprocess.run(
        [sys.executable, "-m", "diffgemma.convert", str(model_copy), "--outfile", str(out_dir / "o.gguf")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "unsupported architecture" in result.stderr
    assert "Traceback" not in result.stderr
    assert_nothing_written(out_dir)
