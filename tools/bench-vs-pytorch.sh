#!/usr/bin/env bash
# Side-by-side CPU benchmark of `mvl bench` and the PyTorch reference on the same preset and
# batch, alternating A B A B so that drift of a shared machine hits both alike. Prints every
# run's ms/sample and the medians and ratios (PyTorch time / ours: > 1 means we are faster).
# Usage: tools/bench-vs-pytorch.sh [PRESET] [BATCH] [ROUNDS]   (needs python3 with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-configs/demo-cpu.toml}"
batch="${2:-4}"
rounds="${3:-5}"
mvl="${MVL:-target/release/mvl}"
[ -x "$mvl" ] || cargo build --release -p engine --bin mvl
out="$(mktemp -d)"
for round in $(seq "$rounds"); do
  "$mvl" bench --config "$preset" --device cpu --batch "$batch" --json > "$out/ours-$round.json"
  python3 engine/benches/reference/bench.py --config "$preset" --device cpu --batch "$batch" > "$out/torch-$round.json"
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
keys = ["train_step_ms_per_sample", "inference_ms_per_sample"]
runs = {who: [json.load(open(f"{out}/{who}-{r}.json")) for r in range(1, rounds + 1)] for who in ("ours", "torch")}
for key in keys:
    ours = [r[key] for r in runs["ours"]]
    torch = [r[key] for r in runs["torch"]]
    ratios = [t / o for o, t in zip(ours, torch)]
    print(f"{key}: ours {statistics.median(ours):.1f} ms (range {min(ours):.1f}-{max(ours):.1f}), "
          f"PyTorch {statistics.median(torch):.1f} ms (range {min(torch):.1f}-{max(torch):.1f}), "
          f"speed ratio PyTorch/ours median {statistics.median(ratios):.2f}x (pairs {', '.join(f'{r:.2f}' for r in ratios)})")
PY
