"""A small progress display on stderr: one rewritten line on a terminal, plain lines otherwise."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

_MB = 1e6


class Progress:
    def __init__(self, total_bytes: int, n_tensors: int, stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total = max(total_bytes, 1)
        self.n_tensors = n_tensors
        self.done = 0
        self.index = 0
        self.name = ""
        self.start = time.monotonic()
        self._last_draw = 0.0

    def begin_tensor(self, name: str) -> None:
        self.index += 1
        self.name = name
        self._draw(force=True)

    def advance(self, n_bytes: int) -> None:
        self.done += n_bytes
        self._draw()

    def end_tensor(self, description: str) -> None:
        if self.enabled and not self.tty:
            print(f"{self._prefix()} {self.name} {description}", file=self.stream, flush=True)

    def finish(self) -> None:
        if self.tty:
            self._draw(force=True)
            print(file=self.stream, flush=True)

    def _prefix(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        width = len(str(self.n_tensors))
        return (
            f"[{self.index:>{width}}/{self.n_tensors}] {100 * self.done / self.total:5.1f}% "
            f"{self.done / _MB:,.1f}/{self.total / _MB:,.1f} MB {self.done / _MB / elapsed:,.1f} MB/s"
        )

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        width = max(shutil.get_terminal_size().columns - 1, 20)
        line = f"{self._prefix()} {self.name}"[:width]
        print(f"\r{line:<{width}}", end="", file=self.stream, flush=True)
