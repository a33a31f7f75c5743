"""Writing the GGUF file: gguf-py's GGUFWriter for header, metadata and tensor table; the
tensor data streamed by us, one bounded chunk at a time.

The file is written under a temporary name next to the target and renamed at the end, so an
interrupted or failed conversion never leaves a partial .gguf behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
from gguf import GGUFValue, GGUFWriter

from .layout import ARCH, TensorPlan
from .metadata import KV
from .progress import Progress
from .safetensors_reader import Checkpoint
from .tensor_data import DEFAULT_CHUNK_ELEMENTS, iter_chunks


def write_gguf_file(
    path: Path,
    kvs: list[KV],
    tensors: list[TensorPlan],
    write_tensor: Callable[[BinaryIO, TensorPlan], int],
    on_tensor: Callable[[TensorPlan, int], None] | None = None,
) -> None:
    """Header, metadata and tensor table by GGUFWriter, then each tensor's data as
    `write_tensor(fout, plan)` writes it (it returns the bytes written, checked against the table),
    aligned; `on_tensor(plan, bytes)` after each. Written under a temporary name and renamed at the
    end: a failure leaves no partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    writer = GGUFWriter(None, ARCH)
    try:
        for kv in kvs:
            # GGUFWriter already holds general.architecture; replacing in place keeps its position.
            writer.kv_data[0][kv.key] = GGUFValue(kv.value, kv.type, kv.sub_type)
        for t in tensors:
            writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=t.qtype)
        writer.open_output_file(tmp)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        fout = writer.fout[0]
        _pad(fout, writer.data_alignment)
        for t in tensors:
            written = write_tensor(fout, t)
            if written != t.nbytes:
                raise AssertionError(f"{t.name}: wrote {written} bytes, the tensor table says {t.nbytes}")
            _pad(fout, writer.data_alignment)
            if on_tensor is not None:
                on_tensor(t, written)
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise


def write_gguf(
    path: Path,
    kvs: list[KV],
    tensors: list[TensorPlan],
    checkpoint: Checkpoint,
    progress: Progress,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> None:
    def write(fout: BinaryIO, t: TensorPlan) -> int:
        progress.begin_tensor(t.name)
        return _write_tensor(fout, t, checkpoint, progress, chunk_elements)

    write_gguf_file(path, kvs, tensors, write,
                    on_tensor=lambda t, _: progress.end_tensor(f"{list(reversed(t.shape))} {t.qtype.name}"))
    progress.finish()


def _write_tensor(
    fout: BinaryIO, t: TensorPlan, checkpoint: Checkpoint, progress: Progress, chunk_elements: int
) -> int:
    if t.producer is not None:
        data, dtype = t.producer(), "RAW"
    elif t.generated is not None:
        data, dtype = t.generated, "F32"
    else:
        data, dtype = checkpoint.view(t.source), t.source_dtype
        if data.shape != t.shape:
            data = data[: t.shape[0]]  # token_embd: only the tokenizer's rows
    written = 0
    for chunk in iter_chunks(data, dtype, t.qtype, chunk_elements):
        fout.write(memoryview(chunk).cast("B"))
        written += chunk.nbytes
        progress.advance(chunk.nbytes)
    if t.source is not None:
        del data
        checkpoint.release(t.source)
    return written


def _pad(fout: BinaryIO, alignment: int) -> None:
    fout.write(b"\0" * (-fout.tell() % alignment))
