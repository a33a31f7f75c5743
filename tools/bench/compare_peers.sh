#!/usr/bin/env bash
# Alternating step-time measurements of diffgemma and its peers on the same synthetic files and
# threads (BENCHMARKS.md). Every run's full output is kept under $OUT.
#
#   tools/bench/compare_peers.sh MODEL_6L.gguf MODEL_2L.gguf LLAMA_DIFFUSION_CLI [ROUNDS]
#
# MODEL_6L: `diffgemma-synth --layers 6` (5 sliding + 1 full layer, the real 5:1 mix);
# MODEL_2L: `diffgemma-synth --layers 2 --pattern SF` (one sliding + one full layer). llama.cpp
# PR #24423 needs both kinds of layer in a file: with only sliding layers its loader rejects the
# unused rope_freqs tensor, with only full layers it asserts on the missing SWA cache. Its
# sliding-layer time is (t[6L] - t[2L]) / 4.
# Environment: THREADS (2), STEPS (3: llama.cpp denoising steps per run, no early stop), RUNS (2: our
# timed runs per measurement, after one warm-up),
# OUT (bench-results), TRANSFORMERS (1: also run tools/bench/peer_transformers.py once).
set -euo pipefail
M6=$1
M2=$2
LLAMA=$3
ROUNDS=${4:-2}
THREADS=${THREADS:-2}
STEPS=${STEPS:-3}
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

for r in $(seq 1 "$ROUNDS"); do
  for k in exact fast32; do
    diffgemma-bench -m "$M6" -t "$THREADS" --kernels "$k" --runs "${RUNS:-2}" --warmup 1 --prompt-lengths 256 --json \
      > "$OUT/ours-$k-6L-r$r.json"
    echo "round $r ours $k 6L: $(python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['step']; print('step %.0f ms, per layer %.0f ms, fixed %.0f ms, 30 layers %.0f ms' % (s['total_ms'], s['per_layer_ms'], s['fixed_ms'] + s['unattributed_ms'], s['extrapolated_30_layers_ms']))" "$OUT/ours-$k-6L-r$r.json")"
  done
  echo "round $r llama.cpp 6L: $(llama "$M6" "6L-r$r")"
  echo "round $r llama.cpp 2L: $(llama "$M2" "2L-r$r")"
done
if [ "${TRANSFORMERS:-1}" = 1 ]; then
  python3 "$HERE/peer_transformers.py" --threads "$THREADS" --layers 1 2 --runs 2 > "$OUT/transformers.json"
  echo "transformers bf16: $(cat "$OUT/transformers.json")"
fi
