"""Tensor data conversion in bounded slices.

A tensor is processed as rows (all dims but the last flattened) in chunks of whole rows, so at
most one chunk's worth of converted data is in memory: a [128, 1408, 2816] expert tensor is
never materialised. Every output type is row-wise (Q8_0 blocks lie along a row), so converting
chunk by chunk gives exactly the bytes a whole-tensor conversion gives.

Rounding follows gguf-py (which is what llama.cpp's converter uses): F16 by numpy's
round-to-nearest-even cast, BF16 and Q8_0 by `gguf.quants.quantize`. A source already in the
output type is copied bit for bit.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from gguf import GGMLQuantizationType, quants

# 4 MiB of float32 per chunk: the converted chunk and numpy's temporaries stay within a few times
# that, and (measured) larger chunks are no faster.
DEFAULT_CHUNK_ELEMENTS = 1 << 20

_SAME_TYPE = {
    ("F32", GGMLQuantizationType.F32),
    ("F16", GGMLQuantizationType.F16),
    ("BF16", GGMLQuantizationType.BF16),
}


def to_float32(x: np.ndarray, dtype: str) -> np.ndarray:
    """Widen a chunk to float32; `dtype` is the safetensors spelling (BF16 arrives as uint16 bits)."""
    if dtype == "F32":
        return x
    if dtype == "BF16":
        return (x.astype(np.uint32) << 16).view(np.float32)
    if dtype in ("F16", "F64"):
        # F64 goes through float32 as llama.cpp does (torch .to(float32) before quantizing).
        return x.astype(np.float32)
    raise ValueError(f"cannot convert {dtype} to float32")


def convert_chunk(x: np.ndarray, dtype: str, qtype: GGMLQuantizationType) -> np.ndarray:
    """One chunk of rows in the output encoding (raw bytes for BF16 and Q8_0)."""
    if (dtype, qtype) in _SAME_TYPE or dtype == "RAW":  # RAW: already encoded (NVFP4 import)
        return x
    f32 = to_float32(x, dtype)
    if qtype == GGMLQuantizationType.F32:
        return f32
    if qtype == GGMLQuantizationType.F16:
        return f32.astype(np.float16)
    if qtype in (GGMLQuantizationType.BF16, GGMLQuantizationType.Q8_0):
        return quants.quantize(f32, qtype)
    raise ValueError(f"unsupported output type {qtype.name}")


def iter_chunks(
    data: np.ndarray, dtype: str, qtype: GGMLQuantizationType, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
) -> Iterator[np.ndarray]:
    """The converted tensor as a sequence of C-contiguous chunks, in file order."""
    if data.ndim == 0:
        data = data.reshape(1)
    n_cols = data.shape[-1]
    rows = data.reshape(-1, n_cols)  # a view: checkpoint tensors are contiguous
    step = max(1, chunk_elements // max(n_cols, 1))
    for start in range(0, rows.shape[0], step):
        yield np.ascontiguousarray(convert_chunk(rows[start : start + step], dtype, qtype))
