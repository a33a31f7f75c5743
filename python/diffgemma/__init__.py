"""diffgemma: a native inference engine for DiffusionGemma.

The compiled core (`diffgemma._core`) is imported lazily so that the pure-Python parts
(the converter, the tiny-model writer) work even where the extension is not built.
"""

__version__ = "0.1.0"

__all__ = ["GGUFFile", "GGUFError", "Error", "Tokenizer", "StreamingDetokenizer", "quantize", "DiffGemma", "__version__"]

from .quantizer import quantize  # noqa: E402


def __getattr__(name):
    if name == "DiffGemma":
        from .api import DiffGemma

        return DiffGemma
    if name in ("GGUFFile", "GGUFError", "Error", "Tokenizer", "StreamingDetokenizer"):
        from . import _core

        return getattr(_core, name)
    raise AttributeError(f"module 'diffgemma' has no attribute {name!r}")
