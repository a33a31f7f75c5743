"""Tensor data is converted in bounded slices: the bytes equal a whole-tensor conversion by gguf-py,
and the memory the converter allocates stays far below the tensor size (the 50 GB checkpoint must
convert on a 24 GB machine)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
st_numpy = pytest.importorskip("safetensors.numpy")

from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import GGUFReader  # noqa: E402

from diffgemma.convert.gguf_output import write_gguf  # noqa: E402
from diffgemma.convert.layout import TensorPlan  # noqa: E402
from diffgemma.convert.progress import Progress  # noqa: E402
from diffgemma.convert.safetensors_reader import Checkpoint  # noqa: E402
from diffgemma.convert.tensor_data import iter_chunks  # noqa: E402

MiB = 1 << 20


@pytest.mark.parametrize("qtype", [QT.F32, QT.F16, QT.BF16, QT.Q8_0])
@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 22])
def test_chunked_conversion_equals_whole_tensor_conversion(qtype, chunk):
    x = np.random.default_rng(0).standard_normal((3, 5, 64), dtype=np.float32)
    whole = gguf.quants.quantize(x, qtype)
    chunks = b"".join(c.tobytes() for c in iter_chunks(x, "F32", qtype, chunk_elements=chunk))
    assert chunks == whole.tobytes()


@pytest.mark.parametrize("src_dtype,np_dtype", [("F16", np.float16), ("F64", np.float64)])
@pytest.mark.parametrize("qtype", [QT.F32, QT.F16, QT.BF16, QT.Q8_0])
def test_f16_and_f64_sources_go_through_float32(src_dtype, np_dtype, qtype):
    x = np.random.default_rng(2).standard_normal((4, 64)).astype(np_dtype)
    got = b"".join(c.tobytes() for c in iter_chunks(x, src_dtype, qtype, chunk_elements=64))
    if src_dtype == "F16" and qtype == QT.F16:
        assert got == x.tobytes()  # a bit copy
    else:
        assert got == gguf.quants.quantize(x.astype(np.float32), qtype).tobytes()


def test_bf16_source_widening_is_exact():
    bits = np.array([0x3F80, 0xC000, 0x0001, 0x7F80, 0x8000], dtype=np.uint16)  # 1, -2, denormal, inf, -0
    out = b"".join(c.tobytes() for c in iter_chunks(bits, "BF16", QT.F32))
    np.testing.assert_array_equal(np.frombuffer(out, np.uint32), bits.astype(np.uint32) << 16)


@pytest.mark.parametrize("qtype", [QT.Q8_0, QT.BF16])
def test_memory_stays_bounded_for_a_large_expert_tensor(tmp_path, qtype):
    shape = (16, 512, 1024)  # [E, 2I, H]: 32 MiB of float32
    st_numpy.save_file(
        {"experts": np.random.default_rng(1).standard_normal(shape, dtype=np.float32)}, tmp_path / "model.safetensors"
    )
    plan = [TensorPlan("blk.0.ffn_gate_up_exps.weight", shape, qtype, source="experts", source_dtype="F32")]
    out = tmp_path / "o.gguf"
    with Checkpoint(tmp_path) as ckpt:
        tracemalloc.start()
        try:
            write_gguf(out, [], plan, ckpt, Progress(0, 1, enabled=False), chunk_elements=1 << 18)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        expected = gguf.quants.quantize(np.array(ckpt.view("experts")), qtype)
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB while converting a 32 MiB tensor"
    t = GGUFReader(out).tensors[0]
    assert t.data.tobytes() == expected.tobytes()


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs Linux /proc for VmRSS")
def test_source_pages_leave_the_resident_set(tmp_path):
    """Mapped checkpoint pages are released after each tensor, so RSS does not grow to the model size."""

    def rss() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))

    shape = (8, 1024, 1024)  # 32 MiB each
    names = [f"t{i}" for i in range(4)]
    arrays = {n: np.full(shape, i, dtype=np.float32) for i, n in enumerate(names)}
    st_numpy.save_file(arrays, tmp_path / "model.safetensors")
    del arrays
    plan = [
        TensorPlan(f"blk.{i}.ffn_gate_up_exps.weight", shape, QT.F32, source=n, source_dtype="F32")
        for i, n in enumerate(names)
    ]
    with Checkpoint(tmp_path) as ckpt:
        before = rss()
        write_gguf(tmp_path / "o.gguf", [], plan, ckpt, Progress(0, 1, enabled=False))
        grown = rss() - before
    assert grown < 48 * MiB, f"RSS grew by {grown / MiB:.0f} MiB after converting 128 MiB"
