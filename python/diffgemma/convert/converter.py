"""HF DiffusionGemma checkpoint -> GGUF: reads the inputs, plans the file, writes it (or lists it)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from gguf import GGUFValueType

from .errors import ConvertError
from .gguf_output import write_gguf
from .hf_config import load_hparams
from .hf_vocab import load_vocab
from .layout import OUTTYPES, TensorPlan, plan_tensors
from .metadata import KV, build_metadata, load_diffusion_params
from .progress import Progress
from .safetensors_reader import Checkpoint
from .tensor_data import DEFAULT_CHUNK_ELEMENTS


@dataclass
class ConvertOptions:
    model_dir: Path
    outfile: Path | None = None
    outtype: str = "bf16"
    dry_run: bool = False
    with_diffusion_params: bool = False
    force: bool = False
    name: str | None = None  # general.name; defaults to the model directory's name
    progress: bool = True
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS


def convert(opts: ConvertOptions, out: TextIO | None = None) -> None:
    """Convert, or with `dry_run` print what would be written to `out` (stdout by default)."""
    model_dir = Path(opts.model_dir)
    if not model_dir.is_dir():
        raise ConvertError(f"model directory {model_dir} does not exist")
    if opts.outtype not in OUTTYPES:
        raise ConvertError(f"unknown output type {opts.outtype!r}; choose one of {', '.join(OUTTYPES)}")
    if not opts.dry_run:
        _check_outfile(opts.outfile, opts.force)

    hp = load_hparams(model_dir)
    vocab = load_vocab(model_dir)
    diffusion_params = load_diffusion_params(model_dir) if opts.with_diffusion_params else None
    with Checkpoint(model_dir) as checkpoint:
        tensors = plan_tensors(hp, len(vocab.tokens), checkpoint, opts.outtype)
        name = opts.name if opts.name is not None else model_dir.resolve().name
        kvs = build_metadata(hp, vocab, tensors, opts.outtype, name, diffusion_params)
        if opts.dry_run:
            print_plan(kvs, tensors, out if out is not None else sys.stdout)
            return
        progress = Progress(sum(t.nbytes for t in tensors), len(tensors), enabled=opts.progress)
        try:
            write_gguf(opts.outfile, kvs, tensors, checkpoint, progress, opts.chunk_elements)
        except OSError as e:
            raise ConvertError(f"cannot write {opts.outfile}: {e.strerror or e}") from None


def _check_outfile(outfile: Path | None, force: bool) -> None:
    if outfile is None:
        raise ConvertError("--outfile is required (or use --dry-run)")
    outfile = Path(outfile)
    if outfile.is_dir():
        raise ConvertError(f"output {outfile} is a directory")
    if outfile.exists() and not force:
        raise ConvertError(f"output {outfile} exists; pass --force to overwrite it")
    if not outfile.parent.is_dir():
        raise ConvertError(f"output directory {outfile.parent} does not exist")


def print_plan(kvs: list[KV], tensors: list[TensorPlan], out: TextIO) -> None:
    print(f"{len(kvs)} metadata keys:", file=out)
    for kv in kvs:
        vtype = kv.type.name + (f"[{kv.sub_type.name}]" if kv.type == GGUFValueType.ARRAY else "")
        print(f"  {kv.key:<52} {vtype:<15} {_abbreviate(kv)}", file=out)
    total = sum(t.nbytes for t in tensors)
    print(f"{len(tensors)} tensors, {total:,} bytes:", file=out)
    for t in tensors:
        ne = "x".join(str(d) for d in reversed(t.shape))  # ggml ne order, as gguf_dump shows it
        print(f"  {t.name:<40} {ne:<20} {t.qtype.name:<5} {t.nbytes:>14,}", file=out)


def _abbreviate(kv: KV, limit: int = 60) -> str:
    def show(v) -> str:
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        s = repr(v)
        return s if len(s) <= limit else s[: limit - 3] + "..."

    if kv.type == GGUFValueType.ARRAY:
        head = ", ".join(show(v) for v in kv.value[:6])
        return f"[{head}{', ...' if len(kv.value) > 6 else ''}] ({len(kv.value)} items)"
    return show(kv.value)
