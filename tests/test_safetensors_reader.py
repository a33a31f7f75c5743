"""Our mmap safetensors reader against the `safetensors` package, and on malformed files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from diffgemma.convert import ConvertError
from diffgemma.convert.safetensors_reader import Checkpoint, SafetensorsFile

st_numpy = pytest.importorskip("safetensors.numpy")


def write_raw(path: Path, header: dict, data: bytes = b"", header_len: int | None = None) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data)
    return path


def entry(dtype: str, shape: list[int], begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


@pytest.mark.parametrize("name", ["tiny", "tiny_bf16", "tiny_sharded"])
def test_views_equal_the_safetensors_package(tiny_checkpoint, name):
    torch = pytest.importorskip("torch")
    from fixtures.models import load_checkpoint_tensors

    model_dir = tiny_checkpoint(name)
    expected = load_checkpoint_tensors(model_dir)
    with Checkpoint(model_dir) as ckpt:
        assert sorted(ckpt) == sorted(expected)
        for key, ref in expected.items():
            view = ckpt.view(key)
            assert not view.flags.writeable and not view.flags.owndata  # zero-copy over the mapping
            if ref.dtype == torch.bfloat16:
                assert ckpt.entry(key).dtype == "BF16" and view.dtype == np.uint16
                ref = ref.view(torch.int16).numpy().view(np.uint16)
            else:
                ref = ref.numpy()
            assert view.shape == ref.shape and view.dtype == ref.dtype, key
            assert view.tobytes() == ref.tobytes(), key


def test_all_numeric_dtypes(tmp_path):
    arrays = {
        "f16": np.arange(6, dtype=np.float16).reshape(2, 3),
        "f32": np.linspace(-1, 1, 5, dtype=np.float32),
        "f64": np.array([1e300, -0.0]),
        "i8": np.array([-3, 4], dtype=np.int8),
        "u8": np.array([200], dtype=np.uint8),
        "i32": np.array([[1, -2]], dtype=np.int32),
        "i64": np.array([2**40], dtype=np.int64),
        "bool": np.array([True, False]),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    path = tmp_path / "model.safetensors"
    st_numpy.save_file(arrays, path)
    f = SafetensorsFile(path)
    for key, ref in arrays.items():
        np.testing.assert_array_equal(f.view(key), ref)
        assert f.view(key).dtype == ref.dtype
    f.close()


def test_fp8_is_returned_as_raw_bytes(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    x = torch.tensor([0.5, -2.0, 448.0]).to(torch.float8_e4m3fn)
    save_file({"w": x}, tmp_path / "model.safetensors")
    with Checkpoint(tmp_path) as ckpt:
        assert ckpt.entry("w").dtype == "F8_E4M3"
        np.testing.assert_array_equal(ckpt.view("w"), x.view(torch.uint8).numpy())


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p.write_bytes(b"\x01\x02"), "too short"),
        (lambda p: write_raw(p, {}, header_len=1000), "truncated"),
        (lambda p: p.write_bytes(struct.pack("<Q", 5) + b"{nope"), "corrupt"),
        (lambda p: p.write_bytes(struct.pack("<Q", 2) + b"[]"), "JSON object"),
        (lambda p: write_raw(p, {}, header_len=1 << 40), "implausible"),
        (lambda p: write_raw(p, {"a": entry("F4_E2M1", [2], 0, 1)}, b"\0"), "unsupported dtype"),
        (lambda p: write_raw(p, {"a": entry("F32", [2], 0, 4)}, b"\0" * 8), "needs 8"),
        (lambda p: write_raw(p, {"a": entry("F32", [4], 0, 16)}, b"\0" * 8), "truncated download"),
        (lambda p: write_raw(p, {"a": entry("F32", [2], 8, 0)}, b"\0" * 8), "bad data_offsets"),
        (lambda p: write_raw(p, {"a": entry("F32", [-2], 0, 8)}, b"\0" * 8), "bad shape"),
        (lambda p: write_raw(p, {"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, b"\0" * 12), "overlap"),
        (lambda p: write_raw(p, {"a": [1, 2]}), "not an object"),
    ],
)
def test_malformed_files_give_clear_errors(tmp_path, make, message):
    path = tmp_path / "model.safetensors"
    make(path)
    with pytest.raises(ConvertError, match=message) as e:
        Checkpoint(tmp_path)
    assert str(path) in str(e.value)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ConvertError, match="no model.safetensors or model.safetensors.index.json"):
        Checkpoint(tmp_path)


def _sharded(tmp_path: Path, weight_map: dict) -> Path:
    st_numpy.save_file({"a": np.ones(2, np.float32)}, tmp_path / "s1.safetensors")
    st_numpy.save_file({"b": np.zeros(3, np.float32)}, tmp_path / "s2.safetensors")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return tmp_path


def test_sharded_index(tmp_path):
    with Checkpoint(_sharded(tmp_path, {"a": "s1.safetensors", "b": "s2.safetensors"})) as ckpt:
        assert sorted(ckpt) == ["a", "b"]
        np.testing.assert_array_equal(ckpt.view("b"), np.zeros(3, np.float32))
        assert ckpt.entry("a").path.name == "s1.safetensors"


@pytest.mark.parametrize(
    "weight_map,message",
    [
        ({"a": "s1.safetensors", "b": "s1.safetensors"}, "does not hold it"),
        ({"a": "s1.safetensors", "b": "s3.safetensors"}, "s3.safetensors listed in .* is missing"),
        ({"a": "../s1.safetensors"}, "invalid shard"),
    ],
)
def test_inconsistent_index(tmp_path, weight_map, message):
    with pytest.raises(ConvertError, match=message):
        Checkpoint(_sharded(tmp_path, weight_map))


def test_single_file_is_preferred_over_an_index(tmp_path):
    _sharded(tmp_path, {"a": "s1.safetensors", "b": "s9.safetensors"})  # a broken index...
    st_numpy.save_file({"c": np.ones(1, np.float32)}, tmp_path / "model.safetensors")
    with Checkpoint(tmp_path) as ckpt:  # ...is not read, as in transformers
        assert list(ckpt) == ["c"]
