#!/usr/bin/env bash
# burn 0.21's CPU backends side by side with the PyTorch reference (issue 11): `mvl bench` on
# burn-flex (what training uses), burn-ndarray (matrix products through Debian's OpenBLAS) and
# burn-candle, then PyTorch eager, alternating round by round on one machine. Prints medians,
# ranges and the PyTorch/ours ratio pair by pair (> 1: ours is faster).
# Needs: apt-get install libopenblas-dev; python3 with torch; an mvl built with
#   cargo build --release -p engine --features cpu-alternatives --bin mvl
# Usage: tools/bench-cpu-backends.sh [PRESET] [BATCH] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-configs/demo-cpu.toml}"
batch="${2:-4}"
rounds="${3:-3}"
mvl="${MVL:-target/release/mvl}"
out="$(mktemp -d)"
for round in $(seq "$rounds"); do
  for backend in flex ndarray candle; do
    "$mvl" bench --config "$preset" --device cpu --batch "$batch" --cpu-backend "$backend" \
      --warmup 1 --iters 3 --json > "$out/$backend-$round.json"
  done
  python3 engine/benches/reference/bench.py --config "$preset" --device cpu --batch "$batch" \
    --warmup 1 --iters 3 > "$out/torch-$round.json"
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
load = lambda who, r: json.load(open(f"{out}/{who}-{r}.json"))
for key in ["train_step_ms_per_sample", "inference_ms_per_sample"]:
    torch = [load("torch", r)[key] for r in range(1, rounds + 1)]
    print(f"{key}: PyTorch median {statistics.median(torch):.1f} ms ({min(torch):.1f}-{max(torch):.1f})")
    for who in ["flex", "ndarray", "candle"]:
        ours = [load(who, r)[key] for r in range(1, rounds + 1)]
        ratios = [t / o for o, t in zip(ours, torch)]
        print(f"  burn-{who}: median {statistics.median(ours):.1f} ms ({min(ours):.1f}-{max(ours):.1f}), "
              f"PyTorch/ours {statistics.median(ratios):.2f}x (pairs {', '.join(f'{x:.2f}' for x in ratios)})")
PY
