"""Per-step times of a llama-diffusion-cli (llama.cpp PR #24423) log, from the timestamps of its
"diffusion step: i/N" progress lines (m.ss.mmm.uuu). Prints the step durations in ms and their
median; the last step (no following progress line) is not counted.

    python tools/bench/llama_step_times.py llama.log
"""

import re
import statistics
import sys

STAMP = re.compile(r"(\d+)\.(\d+)\.(\d+)\.(\d+) I \s*diffusion step: (\d+)/(\d+)")


def main() -> None:
    text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
    t = [(int(m) * 60 + int(s)) * 1e3 + int(ms) + int(us) / 1e3 for m, s, ms, us, _, _ in STAMP.findall(text)]
    steps = [b - a for a, b in zip(t, t[1:])]
    total = re.search(r"time per step: ([0-9.]+)ms", text)
    print({"step_ms": [round(x, 1) for x in steps], "median_step_ms": round(statistics.median(steps), 1) if steps else None,
           "cli_time_per_step_ms": float(total.group(1)) if total else None})


if __name__ == "__main__":
    main()
