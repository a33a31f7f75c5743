"""Malformed GGUF files: each must be a clean diffgemma.GGUFError naming what is wrong, never a
crash. The same cases run through the CLI (one-line error, exit code 1), through a random
mutation loop in-process, and through a C++ driver built with AddressSanitizer and UBSan."""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

import diffgemma
import gguf_craft as gc
from gguf_craft import KV, TensorInfo

REPO = Path(__file__).resolve().parents[1]
U64_MAX = 2**64 - 1


def _open(tmp_path: Path, data: bytes, name: str = "bad.gguf"):
    p = tmp_path / name
    p.write_bytes(data)
    return diffgemma.GGUFFile(str(p))


def _expect_error(tmp_path, data: bytes, match: str):
    with pytest.raises(diffgemma.GGUFError, match=match):
        _open(tmp_path, data)


def test_valid_base_file_reads(tmp_path):
    f = _open(tmp_path, gc.simple_valid().encode())
    assert [t.name for t in f.tensors] == ["a.weight", "b.weight", "c.weight"]
    assert f.metadata["test.nested"] == [[1, 2], [3]]
    # the crafted file is also what gguf-py reads
    r = gguf.GGUFReader(tmp_path / "bad.gguf")
    assert [t.name for t in r.tensors] == ["a.weight", "b.weight", "c.weight"]


def test_every_truncation_point(tmp_path):
    data = gc.simple_valid().encode()
    p = tmp_path / "cut.gguf"
    p.write_bytes(data)
    f = diffgemma.GGUFFile(str(p))
    end = max(f.data_offset + t.offset + t.nbytes for t in f.tensors)
    assert end < len(data)  # the writer pads after the last tensor; cuts there are still valid
    for n in range(len(data)):
        p.write_bytes(data[:n])
        if n >= end:
            assert diffgemma.GGUFFile(str(p)).tensor("c.weight").nbytes == 34
            continue
        if n == 0:
            with pytest.raises(diffgemma.Error, match="is empty"):
                diffgemma.GGUFFile(str(p))
            continue
        with pytest.raises(diffgemma.GGUFError) as ei:
            diffgemma.GGUFFile(str(p))
        msg = str(ei.value)
        assert str(p) in msg
        assert ("end of file" in msg or "past end of file" in msg or "larger than the file" in msg), msg


def test_truncated_real_file(tmp_path, gemma3_gguf):
    """Cut points in the 6.5 MB header of the real file and just into its tensor data."""
    f = diffgemma.GGUFFile(str(gemma3_gguf))
    data_offset = f.data_offset
    with open(gemma3_gguf, "rb") as fh:
        head = fh.read(data_offset + 300_000)
    rng = random.Random(1)
    cuts = sorted({1, 4, 8, 16, 23, 24, 100, 1000, data_offset - 1, data_offset, data_offset + 1}
                  | {rng.randrange(24, data_offset) for _ in range(25)}
                  | {data_offset + rng.randrange(1, 300_000) for _ in range(5)})
    p = tmp_path / "cut.gguf"
    for n in cuts:
        p.write_bytes(head[:n])
        with pytest.raises(diffgemma.GGUFError) as ei:
            diffgemma.GGUFFile(str(p))
        if n > data_offset:
            assert "data runs past end of file" in str(ei.value)


def test_bad_magic_and_versions(tmp_path):
    b = gc.simple_valid()
    b.magic = b"GGML"
    _expect_error(tmp_path, b.encode(), "not a GGUF file")
    for version, match in ((1, "version 1 is not supported"), (4, "unsupported GGUF version 4"),
                           (0, "unsupported GGUF version 0"), (0x03000000, "big-endian")):
        b = gc.simple_valid()
        b.version = version
        _expect_error(tmp_path, b.encode(), match)


@pytest.mark.parametrize("n_kv", [2**63, U64_MAX, 10**12])
def test_absurd_kv_count(tmp_path, n_kv):
    b = gc.simple_valid()
    b.n_kv = n_kv
    _expect_error(tmp_path, b.encode(), "metadata count")


@pytest.mark.parametrize("n_tensors", [2**62, U64_MAX, 10**9])
def test_absurd_tensor_count(tmp_path, n_tensors):
    b = gc.simple_valid()
    b.n_tensors = n_tensors
    _expect_error(tmp_path, b.encode(), "tensor count")


def test_extra_kv_count_runs_out(tmp_path):
    b = gc.simple_valid()
    b.n_kv = len(b.kvs) + 1  # reads into the tensor table and then past the end
    with pytest.raises(diffgemma.GGUFError):
        _open(tmp_path, b.encode())


@pytest.mark.parametrize("length", [U64_MAX, 2**63, 10**9])
def test_absurd_string_lengths(tmp_path, length):
    b = gc.simple_valid()
    b.kvs.insert(0, KV("x", gc.STRING, None, raw=struct.pack("<Q", length) + b"abc"))
    _expect_error(tmp_path, b.encode(), "string length .* runs past end of file")
    b = gc.simple_valid()
    bad_key = struct.pack("<Q", length) + b"key"
    data = b.encode()
    # replace the first key's length field
    first_key_at = 24
    data = data[:first_key_at] + bad_key + data[first_key_at + 8 + len("general.architecture"):]
    _expect_error(tmp_path, data, "metadata key #0.*runs past end of file")


@pytest.mark.parametrize("elem_type,count,match", [
    (gc.UINT32, U64_MAX, "array of .* UINT32 runs past end of file"),
    (gc.UINT64, 2**61, "array of .* UINT64 runs past end of file"),
    (gc.STRING, 2**62, "array of .* strings runs past end of file"),
    (gc.ARRAY, 2**60, "array of .* arrays runs past end of file"),
    (gc.UINT8, 10**6, "array of 1000000 UINT8 runs past end of file"),
])
def test_absurd_array_counts(tmp_path, elem_type, count, match):
    b = gc.simple_valid()
    b.kvs.append(KV("x.arr", gc.ARRAY, None, raw=struct.pack("<IQ", elem_type, count) + b"\0" * 16))
    _expect_error(tmp_path, b.encode(), match)


def test_unknown_value_types(tmp_path):
    b = gc.simple_valid()
    b.kvs.append(KV("x.bad", 13, None, raw=b"\0" * 8))
    _expect_error(tmp_path, b.encode(), "metadata key 'x.bad': unknown value type 13")
    b = gc.simple_valid()
    b.kvs.append(KV("x.bad", gc.ARRAY, None, raw=struct.pack("<IQ", 99, 1) + b"\0" * 8))
    _expect_error(tmp_path, b.encode(), "unknown array element type 99")


def test_deep_nesting(tmp_path):
    raw = b""
    depth = 200
    # ARRAY of ARRAY of ... of one UINT8
    for _ in range(depth):
        raw += struct.pack("<IQ", gc.ARRAY, 1)
    raw += struct.pack("<IQ", gc.UINT8, 1) + b"\x07"
    b = gc.simple_valid()
    b.kvs.append(KV("x.deep", gc.ARRAY, None, raw=raw[4 + 8:]))  # type id written by KV
    b.kvs[-1].raw = struct.pack("<IQ", gc.ARRAY, 1) + raw[12:]
    _expect_error(tmp_path, b.encode(), "nested deeper than")


def test_duplicates(tmp_path):
    b = gc.simple_valid()
    b.kvs.append(KV("test.count", gc.UINT32, 8))
    _expect_error(tmp_path, b.encode(), "duplicate metadata key 'test.count'")
    b = gc.simple_valid()
    b.tensors.append(TensorInfo("a.weight", [8], 0, 96))
    b.data += b"\0" * 32
    _expect_error(tmp_path, b.encode(), "duplicate tensor name 'a.weight'")


def test_tensor_offset_past_eof(tmp_path):
    b = gc.simple_valid()
    b.tensors[2].offset = 1 << 20
    _expect_error(tmp_path, b.encode(),
                  r"tensor 'c.weight': data runs past end of file \(offset \d+\+1048576, size 34, file \d+\)")
    b = gc.simple_valid()
    b.tensors[0].offset = 2**64 - 32  # aligned, overflows when added to the data offset
    _expect_error(tmp_path, b.encode(), "tensor 'a.weight': data runs past end of file")


def test_tensor_data_truncated(tmp_path):
    b = gc.simple_valid()
    b.data = b.data[:70]  # the Q8_0 tensor (64..98) is cut
    _expect_error(tmp_path, b.encode(), "tensor 'c.weight': data runs past end of file")


def test_misaligned_offset(tmp_path):
    b = gc.simple_valid()
    b.tensors[1].offset = 33
    _expect_error(tmp_path, b.encode(), "tensor 'b.weight': data offset 33 is not a multiple of the alignment 32")


def test_overlapping_tensors(tmp_path):
    b = gc.simple_valid()
    b.tensors[1].offset = 0  # b (32 bytes) on top of a
    _expect_error(tmp_path, b.encode(), "tensors 'a.weight' and 'b.weight' overlap|'b.weight' and 'a.weight' overlap")


@pytest.mark.parametrize("ne,ttype,n_dims,match", [
    ([8], 0, 0, "0 dimensions"),
    ([8, 1, 1, 1, 1], 0, None, "5 dimensions"),
    ([2**63, 2], 0, None, "shape overflows"),
    ([2**32, 2**32], 0, None, "shape overflows"),
    ([31], 8, None, "row length 31 is not a multiple of the Q8_0 block size 32"),
    ([8], 4, None, "unknown ggml type 4"),
    ([8], 1000, None, "unknown ggml type 1000"),
])
def test_bad_tensor_info(tmp_path, ne, ttype, n_dims, match):
    b = gc.simple_valid()
    b.tensors[0] = TensorInfo("a.weight", ne, ttype, 0, n_dims=n_dims)
    _expect_error(tmp_path, b.encode(), match)


def test_bad_alignment(tmp_path):
    b = gc.simple_valid()
    b.kvs.append(KV("general.alignment", gc.UINT32, 24))
    _expect_error(tmp_path, b.encode(), "general.alignment 24 is not a power of two")
    b = gc.simple_valid()
    b.kvs.append(KV("general.alignment", gc.UINT32, 0))
    _expect_error(tmp_path, b.encode(), "not a power of two")
    b = gc.simple_valid()
    b.kvs.append(KV("general.alignment", gc.UINT64, 32))
    _expect_error(tmp_path, b.encode(), "general.alignment has type UINT64, expected UINT32")


def test_not_a_regular_file(tmp_path):
    with pytest.raises(diffgemma.Error, match="not a regular file"):
        diffgemma.GGUFFile(str(tmp_path))


def test_cli_reports_bad_files_on_one_line(tmp_path):
    cli = shutil.which("diffgemma-cli")
    assert cli, "diffgemma-cli is not on PATH: install the package (pip install .)"
    b = gc.simple_valid()
    b.tensors[2].offset = 1 << 20
    p = tmp_path / "bad.gguf"
    p.write_bytes(b.encode())
    r = subprocess.run([cli, "--inspect", str(p)], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("diffgemma-cli: error: ") and r.stderr.count("\n") == 1
    assert "tensor 'c.weight': data runs past end of file" in r.stderr


# ---------------------------------------------------------------------------------------------
# random mutations


def _valid_rich_file(tmp_path: Path) -> bytes:
    """A valid file with many value kinds and several tensors, made by gguf-py."""
    p = tmp_path / "rich.gguf"
    w = gguf.GGUFWriter(str(p), arch="test")
    w.add_uint32("test.u32", 3)
    w.add_float32("test.f32", 2.5)
    w.add_string("test.s", "abc")
    w.add_array("test.strs", ["x", "yy", "zzz"])
    w.add_array("test.ints", [1, 2, 3, 4])
    w.add_key_value("test.nested", [[1, 2], [3]], gguf.GGUFValueType.ARRAY)
    w.add_bool("test.b", True)
    rng = np.random.default_rng(0)
    w.add_tensor("t0.weight", rng.standard_normal((4, 8)).astype(np.float32))
    w.add_tensor("t1.weight", gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32),
                                                   gguf.GGMLQuantizationType.Q8_0),
                 raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("t2.weight", rng.standard_normal((3,)).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return p.read_bytes()


_EXTREMES = [0, 1, 2, 7, 31, 32, 33, 255, 2**31, 2**32 - 1, 2**32, 2**62, 2**63, U64_MAX, U64_MAX - 31]


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if op == 0 and b:  # flip a byte
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and len(b) > 8:  # an extreme little-endian u64 or u32 anywhere
            i = rng.randrange(len(b) - 8)
            if rng.random() < 0.5:
                b[i:i + 8] = struct.pack("<Q", rng.choice(_EXTREMES))
            else:
                b[i:i + 4] = struct.pack("<I", rng.choice(_EXTREMES) & 0xFFFFFFFF)
        elif op == 2 and b:  # truncate
            del b[rng.randrange(1, len(b) + 1):]
        elif op == 3 and len(b) > 2:  # delete a range
            i = rng.randrange(len(b) - 1)
            del b[i:i + rng.randint(1, 16)]
        elif op == 4:  # insert random bytes
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 5 and len(b) > 40:  # duplicate a range
            i = rng.randrange(len(b) - 20)
            b[i:i] = b[i:i + rng.randint(1, 20)]
    if not b:
        b = bytearray(b"G")
    return bytes(b)


def _read_everything(path: str) -> None:
    f = diffgemma.GGUFFile(path)
    _ = f.metadata, f.metadata_types
    for t in f.tensors:
        v = f.tensor(t.name)
        np.asarray(v).view(np.uint8).sum() if v.size else None


def test_random_mutations_in_process(tmp_path):
    base = _valid_rich_file(tmp_path)
    rng = random.Random(1234)
    p = str(tmp_path / "mut.gguf")
    outcomes = {"ok": 0, "error": 0}
    for _ in range(3000):
        with open(p, "wb") as fh:
            fh.write(mutate(base, rng))
        try:
            _read_everything(p)
            outcomes["ok"] += 1
        except diffgemma.Error:
            outcomes["error"] += 1
    # the loop must exercise both sides: mutations the reader accepts and ones it rejects
    assert outcomes["ok"] > 50 and outcomes["error"] > 1000, outcomes


# ---------------------------------------------------------------------------------------------
# the same under AddressSanitizer + UBSan, in a separate build


def _asan_driver(tmp_root: Path) -> Path:
    build = REPO / ".cache" / "build-asan"
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.fail("cmake is needed for the sanitizer build (it is in the [test] extra)")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run([cmake, "-S", str(REPO), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Debug",
                    "-DDIFFGEMMA_TESTS=ON", "-DDIFFGEMMA_SANITIZE=address,undefined"],
                   check=True, capture_output=True)
    r = subprocess.run([cmake, "--build", str(build), "--target", "gguf_fuzz"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return build / "tests" / "cpp" / "gguf_fuzz"


def test_mutations_under_address_sanitizer(tmp_path, gemma3_gguf):
    if sys.platform != "linux":
        pytest.skip("the sanitizer build is set up for Linux")
    driver = _asan_driver(tmp_path)
    rng = random.Random(99)
    files = []
    base = _valid_rich_file(tmp_path)
    craft = gc.simple_valid().encode()
    d = tmp_path / "corpus"
    d.mkdir()
    for i in range(1500):
        src = base if i % 2 else craft
        fp = d / f"m{i}.gguf"
        fp.write_bytes(mutate(src, rng))
        files.append(str(fp))
    for n in range(1, len(craft)):  # every truncation of the crafted file
        fp = d / f"t{n}.gguf"
        fp.write_bytes(craft[:n])
        files.append(str(fp))
    files.append(str(gemma3_gguf))  # and one large valid file, every byte touched
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(files))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = subprocess.run([str(driver), "--list", str(lst)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr[-4000:]
    lines = r.stdout.splitlines()
    assert len(lines) == len(files)
    assert lines[-1] == "ok"  # the real file reads cleanly
    assert sum(line == "ok" for line in lines) > 50
    assert sum(line.startswith("error: ") for line in lines) > 1000
