"""Our C++ GGUF reader (through the bindings and the CLI) against gguf-py's GGUFReader, on
files gguf-py writes with every value type, on a real llama.cpp-made file, and on crafted
files for what gguf-py cannot write (GGUF v2, custom alignment)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

import diffgemma
from diffgemma import _core

import gguf_craft as gc


# ---------------------------------------------------------------------------------------------
# helpers: describe a file the way gguf-py sees it and the way we see it, then compare


def _type_string(types: list) -> str:
    if types[0] != VT.ARRAY:
        return types[0].name
    inner = _type_string(types[1:])
    return f"ARRAY[{inner}]"


def _py_contents(field):
    """gguf-py's view of a field's value; nested arrays are rebuilt from the raw parts because
    ReaderField.contents() does not support them."""
    types = field.types
    if types[0] == VT.ARRAY and len(types) > 2 and types[1] == VT.ARRAY:
        return None  # compared against the written values instead
    return field.contents()


def gguf_py_view(path: Path):
    r = gguf.GGUFReader(path)
    meta = {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        meta[name] = (_type_string(field.types), _py_contents(field))
    tensors = []
    for t in r.tensors:
        tensors.append(dict(name=t.name, type=int(t.tensor_type), shape=tuple(int(x) for x in t.shape),
                            n_elements=int(t.n_elements), nbytes=int(t.n_bytes),
                            data_offset=int(t.data_offset), data=t.data))
    return r, meta, tensors


def assert_same_as_gguf_py(path: Path, nested_expect: dict | None = None):
    reader, meta, tensors = gguf_py_view(path)
    f = diffgemma.GGUFFile(str(path))
    assert f.version == int(reader.fields["GGUF.version"].parts[0][0])
    ours_meta = f.metadata
    ours_types = f.metadata_types
    assert list(ours_meta.keys()) == list(meta.keys())  # same keys, same order
    for key, (tstr, value) in meta.items():
        assert ours_types[key] == tstr, key
        if value is None:
            assert ours_meta[key] == nested_expect[key], key
        else:
            assert ours_meta[key] == value, key
    assert f.alignment == reader.alignment
    assert f.data_offset == reader.data_offset

    infos = f.tensors
    assert [t.name for t in infos] == [t["name"] for t in tensors]
    for info, t in zip(infos, tensors):
        assert info.type == t["type"], info.name
        assert info.shape == t["shape"], info.name
        assert info.n_elements == t["n_elements"], info.name
        assert info.nbytes == t["nbytes"], info.name
        assert f.data_offset + info.offset == t["data_offset"], info.name
        view = f.tensor(info.name)
        assert not view.flags.writeable
        assert view.nbytes == t["nbytes"]
        theirs = t["data"]
        if theirs.dtype != np.uint8 or info.type_name in ("I8",):
            assert view.dtype == theirs.dtype, info.name
            assert view.shape == theirs.shape, info.name
        elif info.type_name != "BF16":
            assert view.dtype == np.uint8 and view.shape == theirs.shape, info.name
        assert view.tobytes() == theirs.tobytes(), info.name
    return f


# ---------------------------------------------------------------------------------------------


def test_type_table_matches_gguf_py():
    ours = _core.ggml_type_traits()
    theirs = {int(t): (t.name, b, s) for t, (b, s) in gguf.constants.GGML_QUANT_SIZES.items()}
    assert ours == theirs


ALL_SCALARS = [
    ("t.u8", VT.UINT8, 255), ("t.i8", VT.INT8, -128), ("t.u16", VT.UINT16, 65535),
    ("t.i16", VT.INT16, -32768), ("t.u32", VT.UINT32, 4294967295), ("t.i32", VT.INT32, -2147483648),
    ("t.f32", VT.FLOAT32, 1e-6), ("t.bool_t", VT.BOOL, True), ("t.bool_f", VT.BOOL, False),
    ("t.u64", VT.UINT64, 2**64 - 1), ("t.i64", VT.INT64, -(2**63)), ("t.f64", VT.FLOAT64, 3.141592653589793),
    ("t.str", VT.STRING, "héllo ▁wörld 🙂\n\t\"quoted\""),
]
ALL_ARRAYS = [
    ("a.u8", VT.UINT8, [0, 1, 255]), ("a.i8", VT.INT8, [-1, 0, 127]), ("a.u16", VT.UINT16, [1, 65535]),
    ("a.i16", VT.INT16, [-5, 5]), ("a.u32", VT.UINT32, [7, 8, 9]), ("a.i32", VT.INT32, [8, 8, 2, -1]),
    ("a.f32", VT.FLOAT32, [0.5, -1e30, 1e-45]), ("a.bool", VT.BOOL, [True, False, True, True]),
    ("a.str", VT.STRING, ["<pad>", "▁the", "", "日本語", "a b"]), ("a.u64", VT.UINT64, [0, 2**64 - 1]),
    ("a.i64", VT.INT64, [-(2**63), 2**63 - 1]), ("a.f64", VT.FLOAT64, [1.0 / 3.0, -0.0]),
]
NESTED = {"a.nested_i32": [[1, 2, 3], [4], [5, 6]], "a.nested_str": [["x", "yz"], ["w"]]}


def _write_all_types(path: Path, alignment: int | None = None) -> None:
    w = gguf.GGUFWriter(str(path), arch="test")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, vt, val in ALL_SCALARS:
        w.add_key_value(key, val, vt)
    for key, vt, val in ALL_ARRAYS:
        w.add_key_value(key, val, VT.ARRAY, sub_type=vt)
    for key, val in NESTED.items():
        w.add_key_value(key, val, VT.ARRAY)
    rng = np.random.default_rng(0)
    w.add_tensor("f32.weight", rng.standard_normal((3, 5)).astype(np.float32))
    w.add_tensor("f16.weight", rng.standard_normal((2, 7)).astype(np.float16))
    w.add_tensor("f64.weight", rng.standard_normal((4,)).astype(np.float64))
    w.add_tensor("i8.weight", rng.integers(-128, 127, (9,), dtype=np.int8))
    w.add_tensor("i16.weight", rng.integers(-999, 999, (3, 3), dtype=np.int16))
    w.add_tensor("i32.weight", rng.integers(-(2**31), 2**31 - 1, (5,), dtype=np.int32))
    w.add_tensor("i64.weight", rng.integers(-(2**62), 2**62, (2, 2), dtype=np.int64))
    x = rng.standard_normal((3, 64)).astype(np.float32)
    w.add_tensor("bf16.weight", gguf.quants.quantize(x, QT.BF16), raw_dtype=QT.BF16)
    w.add_tensor("q8_0.weight", gguf.quants.quantize(x, QT.Q8_0), raw_dtype=QT.Q8_0)
    w.add_tensor("q4_0.weight", gguf.quants.quantize(x, QT.Q4_0), raw_dtype=QT.Q4_0)
    w.add_tensor("q5_0.weight", gguf.quants.quantize(x, QT.Q5_0), raw_dtype=QT.Q5_0)
    # K-quants and NVFP4: gguf-py cannot quantize them; random bytes of the right size suffice
    # for a reader test (shape and byte layout are what is checked).
    for name, qt, ne0 in (("q4_k", QT.Q4_K, 512), ("q6_k", QT.Q6_K, 256), ("nvfp4", QT.NVFP4, 128)):
        block, size = gguf.constants.GGML_QUANT_SIZES[qt]
        raw = rng.integers(0, 255, (2, 3, ne0 // block * size), dtype=np.uint8)
        w.add_tensor(f"{name}.weight", raw, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_every_value_type_and_tensor_type(tmp_path):
    p = tmp_path / "all.gguf"
    _write_all_types(p)
    f = assert_same_as_gguf_py(p, nested_expect=NESTED)
    # Our own view of the values, independent of gguf-py's decoding.
    m = f.metadata
    for key, vt, val in ALL_SCALARS:
        if vt == VT.FLOAT32:
            assert m[key] == float(np.float32(val))
        else:
            assert m[key] == val and type(m[key]) is type(val), key
    for key, vt, val in ALL_ARRAYS:
        if vt == VT.FLOAT32:
            assert m[key] == [float(np.float32(v)) for v in val]
        else:
            assert m[key] == val, key
    assert f.metadata_types["a.nested_i32"] == "ARRAY[ARRAY[INT32]]"
    assert f.metadata_types["a.nested_str"] == "ARRAY[ARRAY[STRING]]"
    # Typed views
    np.testing.assert_array_equal(f.tensor("f32.weight"), gguf.GGUFReader(p).tensors[0].data)
    assert f.tensor("bf16.weight").dtype == np.uint16 and f.tensor("bf16.weight").shape == (3, 64)
    assert f.tensor("q8_0.weight").shape == (3, 2 * 34)
    assert f.tensor("nvfp4.weight").shape == (2, 3, 2 * 36)
    assert f.tensor_info("q4_k.weight").shape == (512, 3, 2)
    with pytest.raises(KeyError):
        f.tensor("missing.weight")
    assert "t.u8" in f and "nope" not in f
    assert f.get("nope", 5) == 5


def test_views_are_read_only_and_keep_the_file_alive(tmp_path):
    p = tmp_path / "all.gguf"
    _write_all_types(p)
    v = diffgemma.GGUFFile(str(p)).tensor("f32.weight")  # the file object goes away here
    expected = gguf.GGUFReader(p).tensors[0].data.copy()
    np.testing.assert_array_equal(v, expected)
    with pytest.raises(ValueError):
        v[0, 0] = 1.0


@pytest.mark.parametrize("alignment", [1, 8, 64, 4096])
def test_custom_alignment(tmp_path, alignment):
    p = tmp_path / f"align{alignment}.gguf"
    _write_all_types(p, alignment=alignment)
    f = assert_same_as_gguf_py(p, nested_expect=NESTED)
    assert f.alignment == alignment
    assert f.data_offset % alignment == 0


def test_gguf_v2(tmp_path):
    """v2 has the same layout as v3 (v3 only added big-endian files)."""
    b = gc.simple_valid()
    b.version = 2
    p = tmp_path / "v2.gguf"
    p.write_bytes(b.encode())
    f = assert_same_as_gguf_py(p, nested_expect={"test.nested": [[1, 2], [3]]})
    assert f.version == 2
    assert f.metadata["test.flags"] == [True, False, True]
    np.testing.assert_array_equal(f.tensor("a.weight"), np.arange(8, dtype=np.float32))


def test_real_llamacpp_file(gemma3_gguf):
    """The llama.cpp-made gemma-3-270m Q4_K_M file: every key, type, tensor info and byte."""
    f = assert_same_as_gguf_py(gemma3_gguf)
    assert f.metadata["general.architecture"] == "gemma3"
    assert len(f.metadata["tokenizer.ggml.tokens"]) == 262144
    types = {t.type_name for t in f.tensors}
    assert {"F32", "Q8_0", "Q4_K", "Q6_K", "Q5_0"} <= types


# ---------------------------------------------------------------------------------------------
# the CLI's --inspect against gguf-py


def _cli() -> str:
    exe = shutil.which("diffgemma-cli")
    assert exe, "diffgemma-cli is not on PATH: install the package (pip install .)"
    return exe


def _inspect_json(path: Path) -> dict:
    out = subprocess.run([_cli(), "--inspect", str(path), "--json", "--max-array", "0"],
                         capture_output=True, check=True, text=True, encoding="utf-8")
    return json.loads(out.stdout)


def _json_equal(ours, theirs, tstr):
    if tstr == "FLOAT32":
        return np.float32(ours) == np.float32(theirs)
    if tstr == "ARRAY[FLOAT32]":
        return np.array_equal(np.float32(ours), np.float32(theirs))
    return ours == theirs


@pytest.mark.parametrize("which", ["all_types", "gemma3"])
def test_cli_inspect_json(tmp_path, which, request):
    if which == "gemma3":
        p = request.getfixturevalue("gemma3_gguf")
    else:
        p = tmp_path / "all.gguf"
        _write_all_types(p)
    _, meta, tensors = gguf_py_view(p)
    j = _inspect_json(p)
    assert list(j["metadata"].keys()) == list(meta.keys())
    for key, (tstr, value) in meta.items():
        assert j["metadata"][key]["type"] == tstr
        if value is not None:
            assert _json_equal(j["metadata"][key]["value"], value, tstr), key
    assert [t["name"] for t in j["tensors"]] == [t["name"] for t in tensors]
    for jt, t in zip(j["tensors"], tensors):
        assert tuple(jt["shape"]) == t["shape"] and jt["type_id"] == t["type"]
        assert j["data_offset"] + jt["offset"] == t["data_offset"] and jt["nbytes"] == t["nbytes"]


def test_cli_inspect_text(gemma3_gguf):
    out = subprocess.run([_cli(), "--inspect", str(gemma3_gguf)], capture_output=True, check=True,
                         text=True).stdout
    assert "GGUF v3" in out
    assert "tensors:    236" in out
    assert "gemma3.attention.sliding_window" in out and "512" in out
    assert "blk.17.post_ffw_norm.weight" in out
    assert "(262144)" in out  # array lengths are shown, not dumped


def test_cli_usage_errors(tmp_path):
    cli = _cli()
    r = subprocess.run([cli, "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown argument '--bogus'" in r.stderr
    assert r.stderr.count("\n") == 1
    r = subprocess.run([cli, "--inspect", "--max-array", "-3"], capture_output=True, text=True)
    assert r.returncode == 2 and "--max-array" in r.stderr
    r = subprocess.run([cli, "--inspect", str(tmp_path / "missing.gguf")], capture_output=True, text=True)
    assert r.returncode == 1 and "cannot open" in r.stderr and "No such file" in r.stderr
    r = subprocess.run([cli, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--inspect" in r.stdout


# ---------------------------------------------------------------------------------------------
# our converter's files


@pytest.mark.parametrize("name,outtype", [("tiny", "f32"), ("tiny", "bf16"), ("tiny", "q8_0"),
                                          ("tiny_odd", "f16"), ("tiny_odd", "q8_0")])
def test_converted_files(tiny_gguf, name, outtype):
    path = tiny_gguf(name, outtype)
    f = assert_same_as_gguf_py(path)
    assert f.metadata["general.architecture"] == "diffusion-gemma"
    assert f.metadata_types["diffusion-gemma.attention.head_count_kv"] == "ARRAY[INT32]"
    assert f.metadata_types["diffusion-gemma.attention.sliding_window_pattern"] == "ARRAY[BOOL]"
    out = subprocess.run([_cli(), "--inspect", str(path)], capture_output=True, check=True, text=True).stdout
    assert "model:      diffusion-gemma" in out
    n_layers = f.metadata["diffusion-gemma.block_count"]
    n_full = f.metadata["diffusion-gemma.attention.sliding_window_pattern"].count(False)
    assert f"layers {n_layers}," in out and f"({n_layers - n_full} sliding, {n_full} full)" in out
    assert f"canvas {f.metadata['diffusion.canvas_length']}" in out
