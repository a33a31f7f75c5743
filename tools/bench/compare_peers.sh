#!/usr/bin/env bash
# Alternating step-time measurements of diffgemma and its peers on the same synthetic files and
# threads (BENCHMARKS.md). Every run's full output is kept under $OUT.
#
#   tools/bench/compare_peers.sh LLAMA_DIFFUSION_CLI MODEL_2L.gguf MODEL_6L.gguf [MODEL_LONG.gguf]
#
# LLAMA_DIFFUSION_CLI: llama.cpp PR #24423's llama-diffusion-cli, built from a copy fetched outside
# this repository (BENCHMARKS.md says which commit and options). MODEL_6L: `diffgemma-synth
# --layers 6` (5 sliding + 1 full layer, the real 5:1 mix); MODEL_2L: `--layers 2 --pattern SF`.
# llama.cpp needs both kinds of layer in a file, and gives no per-layer split: its sliding layer
# is (t[6L] - t[2L]) / 4. MODEL_LONG (optional): a longer file timed whole by both engines: the full
# 30 layers where the file fits in memory (Q4_K_M), else e.g. 12 layers (Q8_0: a longer baseline for
# llama.cpp's per-layer figure, (t[12L] - t[2L]) / 10.14 per sliding layer).
# Environment: THREADS (2), STEPS (3: llama.cpp denoising steps per run, no early stop), RUNS (3:
# our timed runs per measurement, after one warm-up), ROUNDS (2), OUT (bench-results),
# TRANSFORMERS (1: also run tools/bench/peer_transformers.py once, 3 layers, per-layer hooks).
set -euo pipefail
LLAMA=$1
M2=$2
M6=$3
MLONG=${4:-}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
STEPS=${STEPS:-3}
RUNS=${RUNS:-3}
OUT=${OUT:-bench-results}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
PROMPT="Write a short story about a robot who learns to paint."

llama() {  # $1 model, $2 tag
  "$LLAMA" -m "$1" -t "$THREADS" -p "$PROMPT" -n 256 --diffusion-blocks 1 \
    --diffusion-eb-max-steps "$STEPS" --diffusion-eb-stability 1000000 --diffusion-eb-confidence 0 \
    --diffusion-kv-cache on -no-cnv > "$OUT/llama-$2.log" 2>&1
  python3 "$HERE/llama_step_times.py" "$OUT/llama-$2.log"
}

ours() {  # $1 model, $2 tag
  diffgemma-bench -m "$1" -t "$THREADS" --runs "$RUNS" --warmup 1 --prompt-lengths 256 --json > "$OUT/ours-$2.json"
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['step']; print('step %.0f ms, per layer %.1f ms, fixed %.0f ms, 30 layers %.0f ms' % (s['total_ms'], s['per_layer_ms'], s['fixed_ms'] + s['unattributed_ms'], s['extrapolated_30_layers_ms']))" "$OUT/ours-$2.json"
}

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r ours 6L: $(ours "$M6" "6L-r$r")"
  echo "round $r llama.cpp 6L: $(llama "$M6" "6L-r$r")"
  echo "round $r ours 2L: $(ours "$M2" "2L-r$r")"
  echo "round $r llama.cpp 2L: $(llama "$M2" "2L-r$r")"
  if [ -n "$MLONG" ]; then
    echo "round $r ours long ($MLONG): $(ours "$MLONG" "long-r$r")"
    echo "round $r llama.cpp long ($MLONG): $(llama "$MLONG" "long-r$r")"
  fi
done
if [ "${TRANSFORMERS:-1}" = 1 ]; then
  python3 "$HERE/peer_transformers.py" --threads "$THREADS" --layers 3 --runs 5 > "$OUT/transformers.json"
  echo "transformers bf16: $(cat "$OUT/transformers.json")"
fi
