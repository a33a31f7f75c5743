"""`diffgemma-demo`: write the tiny DiffusionGemma checkpoint, convert it to GGUF, inspect it.

Steps:
1. write (or reuse) the tiny Hugging Face checkpoint of ``diffgemma.tiny`` in a cache directory
   (``$DIFFGEMMA_CACHE``, else ``~/.cache/diffgemma/tiny-<version>``);
2. convert it with ``diffgemma-convert`` (``diffgemma.convert.main``) unless the GGUF is already there;
3. run ``diffgemma-cli --inspect FILE.gguf`` (the C++ CLI, looked up on PATH and next to the Python
   executable);
4. run a short generation with it (``diffgemma-cli -m FILE.gguf -p ... -n 32``; the weights are
   random, so the text is too);
5. print where the files are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from . import __version__
from .tiny import TINY_VERSION, write_tiny_checkpoint

OUTTYPES = ("f32", "f16", "bf16", "q8_0")
_STAMP = ".diffgemma-tiny.json"
_CHECKPOINT_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)


def default_cache_dir() -> Path:
    env = os.environ.get("DIFFGEMMA_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "diffgemma" / f"tiny-{__version__}"


def _stamp(seed: int) -> dict:
    return {"tiny_version": TINY_VERSION, "seed": seed, "dtype": "float32"}


def ensure_checkpoint(cache: Path, seed: int = 0, force: bool = False) -> Path:
    """The tiny checkpoint in ``cache/diffgemma-tiny``; written unless an identical one is there."""
    model_dir = cache / "diffgemma-tiny"
    stamp_file = model_dir / _STAMP
    if not force and stamp_file.is_file() and all((model_dir / f).is_file() for f in _CHECKPOINT_FILES):
        try:
            if json.loads(stamp_file.read_text(encoding="utf-8")) == _stamp(seed):
                return model_dir
        except (OSError, ValueError):
            pass
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".diffgemma-tiny-", dir=cache))
    try:
        write_tiny_checkpoint(tmp, seed=seed)
        (tmp / _STAMP).write_text(json.dumps(_stamp(seed), sort_keys=True) + "\n", encoding="utf-8")
        if model_dir.exists():
            shutil.rmtree(model_dir)
        os.replace(tmp, model_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return model_dir


def find_cli() -> Optional[Path]:
    """``diffgemma-cli`` on PATH or next to the running Python executable, else None."""
    names = ["diffgemma-cli.exe", "diffgemma-cli"] if os.name == "nt" else ["diffgemma-cli"]
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    bindir = Path(sys.executable).parent
    for name in names:
        cand = bindir / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def convert_checkpoint(model_dir: Path, gguf: Path, outtype: str) -> int:
    """Run the converter in-process (as ``diffgemma-convert`` would); returns its exit status."""
    try:
        from .convert import main as convert_main
    except ImportError as e:  # the converter is part of the package; this only guards broken installs
        print(f"diffgemma-demo: cannot import diffgemma.convert: {e}", file=sys.stderr)
        return 1
    if gguf.exists():
        gguf.unlink()
    rc = 1
    try:
        rc = convert_main([str(model_dir), "--outfile", str(gguf), "--outtype", outtype])
        rc = int(rc) if rc else 0
    except SystemExit as e:  # argparse errors
        rc = e.code if isinstance(e.code, int) and e.code else 1
    finally:
        if rc != 0 and gguf.exists():
            gguf.unlink()  # never leave a half-written file that a later run would reuse
    return rc


def run_generation(cli: Path, gguf: Path) -> int:
    """A short generation on the tiny model (random weights: random text), stats line included.
    --raw: the tiny tokenizer's chat template is not one the native renderer knows."""
    cmd = [str(cli), "-m", str(gguf), "-p", "Why is the sky blue?", "-n", "32", "-s", "0", "--diffusion-steps", "8",
           "--raw"]
    print("$ " + " ".join(cmd[:1] + ["-m", gguf.name] + [f'"{c}"' if " " in c else c for c in cmd[3:]]))
    sys.stdout.flush()
    status = subprocess.call(cmd)
    if status != 0:
        print(f"diffgemma-demo: {cli} exited with status {status}", file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="diffgemma-demo",
        description="Write a tiny random DiffusionGemma checkpoint, convert it to GGUF and inspect it "
        "with diffgemma-cli. Files are cached ($DIFFGEMMA_CACHE or ~/.cache/diffgemma/tiny-<version>).",
    )
    p.add_argument("--cache-dir", type=Path, help="where to keep the files (overrides $DIFFGEMMA_CACHE)")
    p.add_argument("--outtype", choices=OUTTYPES, default="f32", help="GGUF weight type (default f32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--force", action="store_true", help="rewrite the checkpoint and the GGUF even if cached")
    p.add_argument("--no-inspect", action="store_true", help="do not run diffgemma-cli --inspect")
    p.add_argument("--no-generate", action="store_true", help="do not run a short generation with diffgemma-cli")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cache = args.cache_dir.expanduser() if args.cache_dir else default_cache_dir()
    if args.seed != 0:
        cache = cache / f"seed-{args.seed}"

    model_dir = ensure_checkpoint(cache, seed=args.seed, force=args.force)
    print(f"tiny checkpoint: {model_dir}")

    gguf = cache / f"diffgemma-tiny-{args.outtype}.gguf"
    stamp = model_dir / _STAMP
    stale = gguf.is_file() and stamp.is_file() and gguf.stat().st_mtime < stamp.stat().st_mtime
    if args.force or stale or not gguf.is_file():
        rc = convert_checkpoint(model_dir, gguf, args.outtype)
        if rc != 0 or not gguf.is_file():
            print(f"diffgemma-demo: conversion failed (exit status {rc})", file=sys.stderr)
            return rc or 1
    print(f"gguf:            {gguf}")

    status = 0
    if not args.no_inspect:
        cli = find_cli()
        if cli is None:
            print(
                "diffgemma-demo: diffgemma-cli was not found on PATH or next to "
                f"{sys.executable}; build and install the package (pip install .) or add the "
                f"build directory to PATH, then run: diffgemma-cli --inspect {gguf}",
                file=sys.stderr,
            )
            status = 2
        else:
            sys.stdout.flush()
            status = subprocess.call([str(cli), "--inspect", str(gguf)])
            if status != 0:
                print(f"diffgemma-demo: {cli} --inspect exited with status {status}", file=sys.stderr)
            elif not args.no_generate:
                status = run_generation(cli, gguf)

    print("files:")
    for f in sorted(model_dir.iterdir()):
        if not f.name.startswith("."):
            print(f"  {f}")
    print(f"  {gguf}")
    return status


if __name__ == "__main__":
    sys.exit(main())
