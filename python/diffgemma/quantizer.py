"""`diffgemma.quantize(in, out, type)` (defined here, exported from the package): rewrite a GGUF model in a quantized type mix.

The work is done in C++ (the same code as the `diffgemma-quantize` tool): llama-quantize's
per-tensor type rules for the mixes, streaming tensor by tensor, multithreaded by rows with an
output that does not depend on the thread count.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

TYPES = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q5_0", "NVFP4")


def quantize(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    type: str,
    threads: int = 0,
    progress: bool | Callable[[int, int, str], None] = False,
) -> None:
    """Quantize the GGUF model `in_path` into `out_path` as `type` (one of TYPES).

    `threads` <= 0 uses every core. `progress`: True prints one line per tensor to stderr, a
    callable gets (index, count, line). Raises diffgemma.Error for a bad file or type.
    """
    from . import _core

    if progress is True:
        callback = lambda i, n, line: print(line, file=sys.stderr)  # noqa: E731
    else:
        callback = progress or None
    _core.quantize_file(os.fspath(in_path), os.fspath(out_path), type, threads, callback)


def quantization_plan(path: str | os.PathLike, type: str) -> list[tuple[str, str]]:
    """[(tensor name, type name)] that quantize() would write for the GGUF at `path`."""
    from gguf import GGMLQuantizationType

    from . import _core

    return [(name, GGMLQuantizationType(t).name) for name, t in _core.quantization_plan(os.fspath(path), type)]
