"""HF safetensors -> GGUF converter for DiffusionGemma (`diffgemma-convert`).

Writes the layout of the community GGUF files (shared/docs/gguf-layout.md) with only numpy and
gguf-py at run time, streaming tensor data so memory stays bounded whatever the model size.
"""

from .cli import main
from .converter import ConvertOptions, convert
from .errors import ConvertError

__all__ = ["main", "convert", "ConvertOptions", "ConvertError"]
