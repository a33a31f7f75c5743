"""`diffgemma-convert`: the command line front end of the converter."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .converter import ConvertOptions, convert
from .errors import ConvertError
from .layout import OUTTYPES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="diffgemma-convert",
        description="Convert a Hugging Face DiffusionGemma checkpoint (safetensors) to GGUF, "
        "in the layout of the llama.cpp / unsloth DiffusionGemma files.",
    )
    p.add_argument("model_dir", type=Path, help="directory with config.json, tokenizer.json and *.safetensors")
    p.add_argument("--outfile", type=Path, help="the .gguf file to write")
    p.add_argument(
        "--outtype",
        choices=list(OUTTYPES),
        default="bf16",
        help="type of the weight matrices (norms, scales and the router stay F32); default bf16",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list every key and tensor that would be written; write nothing"
    )
    p.add_argument(
        "--with-diffusion-params",
        action="store_true",
        help="also store the entropy-bound sampler settings (diffusion.eb_*) from generation_config.json",
    )
    p.add_argument("--force", action="store_true", help="overwrite --outfile if it exists")
    p.add_argument("--name", help="general.name to store (default: the model directory's name)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    opts = ConvertOptions(
        model_dir=args.model_dir,
        outfile=args.outfile,
        outtype=args.outtype,
        dry_run=args.dry_run,
        with_diffusion_params=args.with_diffusion_params,
        force=args.force,
        name=args.name,
        progress=not args.quiet,
    )
    try:
        convert(opts)
    except ConvertError as e:
        print(f"diffgemma-convert: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `--dry-run | head` closed our stdout; nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except OSError as e:  # an unreadable input or a full disk: not a bug, so no traceback
        print(f"diffgemma-convert: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("diffgemma-convert: interrupted", file=sys.stderr)
        return 130
    if not args.dry_run and not args.quiet:
        print(f"wrote {args.outfile}", file=sys.stderr)
    return 0
