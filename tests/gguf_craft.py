"""Byte-level GGUF builder for tests: full control over every field, so that malformed files
(absurd counts, bad offsets, wrong types) can be written on purpose. Valid output of this
builder is checked against gguf-py's reader in the tests, so it is not its own oracle."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# GGUF value type ids
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR_FMT = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
               FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}


def gguf_string(s: str | bytes) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value_bytes(vtype: int, value, elem_type: int | None = None) -> bytes:
    """Payload of a value (without its type id). Arrays: value is a list; elem_type required;
    nested arrays are given as (elem_type, list) tuples."""
    if vtype == STRING:
        return gguf_string(value)
    if vtype == ARRAY:
        out = struct.pack("<IQ", elem_type, len(value))
        for v in value:
            if elem_type == ARRAY:
                inner_type, inner = v
                out += value_bytes(ARRAY, inner, inner_type)
            else:
                out += value_bytes(elem_type, v)
        return out
    return struct.pack(_SCALAR_FMT[vtype], value)


@dataclass
class KV:
    key: str | bytes
    vtype: int
    value: object
    elem_type: int | None = None
    raw: bytes | None = None  # overrides the encoded payload (type id still written)

    def encode(self) -> bytes:
        payload = self.raw if self.raw is not None else value_bytes(self.vtype, self.value, self.elem_type)
        return gguf_string(self.key) + struct.pack("<I", self.vtype) + payload


@dataclass
class TensorInfo:
    name: str | bytes
    ne: list[int]           # ggml order
    ggml_type: int
    offset: int             # relative to the data section
    n_dims: int | None = None  # override (for malformed files)

    def encode(self) -> bytes:
        n = len(self.ne) if self.n_dims is None else self.n_dims
        out = gguf_string(self.name) + struct.pack("<I", n)
        out += b"".join(struct.pack("<Q", d) for d in self.ne)
        return out + struct.pack("<IQ", self.ggml_type, self.offset)


@dataclass
class GGUFBuild:
    kvs: list[KV] = field(default_factory=list)
    tensors: list[TensorInfo] = field(default_factory=list)
    data: bytes = b""
    version: int = 3
    magic: bytes = b"GGUF"
    alignment: int = 32
    n_kv: int | None = None       # override the counts (for malformed files)
    n_tensors: int | None = None

    def header(self) -> bytes:
        n_kv = len(self.kvs) if self.n_kv is None else self.n_kv
        n_t = len(self.tensors) if self.n_tensors is None else self.n_tensors
        out = self.magic + struct.pack("<IQQ", self.version, n_t, n_kv)
        out += b"".join(kv.encode() for kv in self.kvs)
        out += b"".join(t.encode() for t in self.tensors)
        return out

    def encode(self) -> bytes:
        head = self.header()
        pad = (-len(head)) % self.alignment
        return head + b"\0" * pad + self.data


def simple_valid() -> GGUFBuild:
    """A small valid file: a few keys of each kind and three tensors (F32, F16, Q8_0 bytes)."""
    b = GGUFBuild()
    b.kvs = [
        KV("general.architecture", STRING, "test"),
        KV("test.count", UINT32, 7),
        KV("test.scale", FLOAT32, 0.5),
        KV("test.flags", ARRAY, [True, False, True], BOOL),
        KV("test.names", ARRAY, ["a", "bc", ""], STRING),
        KV("test.nested", ARRAY, [(INT32, [1, 2]), (INT32, [3])], ARRAY),
    ]
    f32 = struct.pack("<8f", *range(8))            # 32 bytes
    f16 = struct.pack("<16e", *range(16))          # 32 bytes
    q8 = bytes(range(34))                          # one Q8_0 block, padded to 64
    b.tensors = [
        TensorInfo("a.weight", [8], 0, 0),
        TensorInfo("b.weight", [4, 4], 1, 32),
        TensorInfo("c.weight", [32], 8, 64),
    ]
    b.data = f32 + f16 + q8 + b"\0" * 30
    return b
