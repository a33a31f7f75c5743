"""A minimal, validating safetensors reader over mmap.

Format: an 8-byte little-endian header length N, N bytes of JSON, then the data section. Each
JSON entry gives a tensor's dtype, shape and [begin, end) byte range inside the data section.

We read it ourselves (rather than through the `safetensors` package) so that the converter
needs only numpy and gguf, and so that every view is a zero-copy slice of the mapped file:
a 50 GB checkpoint is never read into memory as a whole.
"""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import ConvertError

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"

# safetensors dtype -> numpy dtype of the view we hand out. Types numpy lacks are returned as
# raw bit patterns of the same width: BF16 as uint16, the FP8 types as uint8.
_NUMPY_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("<u1"),
    "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "F8_E4M3": np.dtype("<u1"),
    "F8_E5M2": np.dtype("<u1"),
}

# The reference implementation refuses headers above 100 MB; a bigger one means a corrupt file.
_MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives: `offset` is absolute within `path`."""

    name: str
    dtype: str  # safetensors spelling: "BF16", "F32", ...
    shape: tuple[int, ...]
    path: Path
    offset: int
    nbytes: int

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class SafetensorsFile:
    """One mapped .safetensors file. Views it returns stay valid until `close()`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._fh = open(self.path, "rb")
        except OSError as e:
            raise ConvertError(f"cannot open {self.path}: {e.strerror}") from None
        try:
            self._size = os.fstat(self._fh.fileno()).st_size
            self.entries, self.metadata = self._parse_header()
            # mmap refuses empty files; a header-only file has no data to map anyway.
            self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if self._size else None
        except BaseException:
            self._fh.close()
            raise

    def _parse_header(self) -> tuple[dict[str, TensorEntry], dict[str, str]]:
        path, size = self.path, self._size
        if size < 8:
            raise ConvertError(f"{path} is truncated: {size} bytes, too short for a safetensors header")
        header_len = int.from_bytes(self._fh.read(8), "little")
        if header_len > _MAX_HEADER_BYTES:
            raise ConvertError(f"{path} is not a safetensors file: header length {header_len} is implausible")
        if 8 + header_len > size:
            raise ConvertError(
                f"{path} is truncated: its header needs {header_len} bytes but the file has {size - 8} after the length"
            )
        try:
            header = json.loads(self._fh.read(header_len).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConvertError(f"{path} has a corrupt safetensors header: {e}") from None
        if not isinstance(header, dict):
            raise ConvertError(f"{path} has a corrupt safetensors header: expected a JSON object")

        metadata = header.pop("__metadata__", None) or {}
        data_start = 8 + header_len
        data_size = size - data_start
        entries: dict[str, TensorEntry] = {}
        for name, info in header.items():
            entries[name] = self._parse_entry(name, info, data_start, data_size)
        self._check_no_overlap(entries.values(), data_start)
        return entries, metadata

    def _parse_entry(self, name: str, info: object, data_start: int, data_size: int) -> TensorEntry:
        where = f"tensor {name!r} in {self.path}"
        if not isinstance(info, dict):
            raise ConvertError(f"{where}: header entry is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _NUMPY_DTYPES:
            raise ConvertError(f"{where}: unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ConvertError(f"{where}: bad shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise ConvertError(f"{where}: bad data_offsets {offsets!r}")
        begin, end = offsets
        if end > data_size:
            raise ConvertError(
                f"{where} ends at byte {data_start + end} but the file has only {data_start + data_size} bytes "
                "(truncated download?)"
            )
        numel = int(np.prod(shape, dtype=np.int64))
        expected = numel * _NUMPY_DTYPES[dtype].itemsize
        if end - begin != expected:
            raise ConvertError(
                f"{where}: {end - begin} bytes of data for shape {shape} {dtype}, which needs {expected}"
            )
        return TensorEntry(name, dtype, tuple(shape), self.path, data_start + begin, end - begin)

    def _check_no_overlap(self, entries, data_start: int) -> None:
        last_end, last_name = data_start, None
        for e in sorted((e for e in entries if e.nbytes), key=lambda e: e.offset):
            if e.offset < last_end:
                raise ConvertError(f"{self.path}: tensors {last_name!r} and {e.name!r} overlap")
            last_end, last_name = e.offset + e.nbytes, e.name

    def view(self, name: str) -> np.ndarray:
        """A read-only, zero-copy array over the mapped bytes of `name` (BF16 as uint16 bits)."""
        e = self.entries[name]
        dtype = _NUMPY_DTYPES[e.dtype]
        if e.nbytes == 0:
            return np.zeros(e.shape, dtype=dtype)
        return np.frombuffer(self._mm, dtype=dtype, count=e.numel, offset=e.offset).reshape(e.shape)

    def release(self, name: str) -> None:
        """Drop `name`'s pages from our resident set once it is converted; they stay in the page
        cache, and a later read just faults them back. Keeps RSS at about one tensor, not the model."""
        if self._mm is None or not hasattr(self._mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return
        e = self.entries[name]
        start = e.offset - e.offset % mmap.PAGESIZE
        if e.nbytes:
            self._mm.madvise(mmap.MADV_DONTNEED, start, e.offset + e.nbytes - start)

    def close(self) -> None:
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                # A caller still holds a view; the mapping is released when that view dies.
                pass
            self._mm = None
        self._fh.close()


class Checkpoint:
    """All tensors of a Hugging Face checkpoint directory, single-file or sharded.

    Like transformers, a `model.safetensors` is preferred over `model.safetensors.index.json`.
    """

    def __init__(self, model_dir: Path):
        self.model_dir = Path(model_dir)
        self._files: dict[Path, SafetensorsFile] = {}
        self._where: dict[str, SafetensorsFile] = {}
        try:
            if (self.model_dir / SINGLE_FILE).is_file():
                self._open_all([self.model_dir / SINGLE_FILE])
            elif (self.model_dir / INDEX_FILE).is_file():
                self._open_index(self.model_dir / INDEX_FILE)
            else:
                raise ConvertError(f"no {SINGLE_FILE} or {INDEX_FILE} in {self.model_dir}")
        except BaseException:
            self.close()
            raise

    def _open_all(self, paths: list[Path]) -> None:
        for path in paths:
            f = SafetensorsFile(path)
            self._files[path] = f
            for name in f.entries:
                if name in self._where:
                    raise ConvertError(f"tensor {name!r} appears in both {self._where[name].path} and {path}")
                self._where[name] = f

    def _open_index(self, index_path: Path) -> None:
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            weight_map = index["weight_map"]
            if not isinstance(weight_map, dict):
                raise TypeError("weight_map is not an object")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise ConvertError(f"{index_path} is not a valid safetensors index: {e}") from None

        shards: list[Path] = []
        for shard in dict.fromkeys(weight_map.values()):
            if not isinstance(shard, str) or Path(shard).is_absolute() or ".." in Path(shard).parts:
                raise ConvertError(f"{index_path} names an invalid shard file {shard!r}")
            path = self.model_dir / shard
            if not path.is_file():
                raise ConvertError(f"shard {shard} listed in {index_path.name} is missing from {self.model_dir}")
            shards.append(path)
        self._open_all(shards)

        for name, shard in weight_map.items():
            f = self._where.get(name)
            if f is None or f.path != self.model_dir / shard:
                raise ConvertError(
                    f"{index_path.name} says tensor {name!r} is in {shard}, but that file does not hold it"
                )

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def entry(self, name: str) -> TensorEntry:
        return self._where[name].entries[name]

    def view(self, name: str) -> np.ndarray:
        return self._where[name].view(name)

    def release(self, name: str) -> None:
        self._where[name].release(name)

    @property
    def files(self) -> list[Path]:
        return list(self._files)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._where.clear()

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
