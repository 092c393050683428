#!/usr/bin/env bash
# Side-by-side CPU benchmark of `mvl bench` and the PyTorch reference on the same preset and
# batch, alternating A B A B so that drift of a shared machine hits both alike. Prints every
# run's ms/sample and the medians and ratios (PyTorch time / ours: > 1 means we are faster).
# MVL may name several binaries (MVL="old/mvl new/mvl"): each runs in every round, so a change
# is measured against its parent and against PyTorch in one run.
# Usage: tools/bench-vs-pytorch.sh [PRESET] [BATCH] [ROUNDS]   (needs python3 with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-configs/demo-cpu.toml}"
batch="${2:-4}"
rounds="${3:-5}"
read -r -a binaries <<< "${MVL:-target/release/mvl}"
if [ "${#binaries[@]}" -eq 1 ] && [ ! -x "${binaries[0]}" ]; then
  cargo build --release -p engine --bin mvl
fi
out="$(mktemp -d)"
for round in $(seq "$rounds"); do
  for i in "${!binaries[@]}"; do
    "${binaries[$i]}" bench --config "$preset" --device cpu --batch "$batch" --json > "$out/ours$i-$round.json"
  done
  python3 engine/benches/reference/bench.py --config "$preset" --device cpu --batch "$batch" > "$out/torch-$round.json"
done
python3 - "$out" "$rounds" "${binaries[@]}" <<'PY'
import json, statistics, sys
out, rounds, binaries = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
keys = ["train_step_ms_per_sample", "inference_ms_per_sample"]
load = lambda who: [json.load(open(f"{out}/{who}-{r}.json")) for r in range(1, rounds + 1)]
torch_runs = load("torch")
for key in keys:
    torch = [r[key] for r in torch_runs]
    print(f"{key}: PyTorch {statistics.median(torch):.1f} ms (range {min(torch):.1f}-{max(torch):.1f})")
    for i, binary in enumerate(binaries):
        ours = [r[key] for r in load(f"ours{i}")]
        ratios = [t / o for o, t in zip(ours, torch)]
        print(f"  {binary}: {statistics.median(ours):.1f} ms (range {min(ours):.1f}-{max(ours):.1f}), "
              f"speed ratio PyTorch/ours median {statistics.median(ratios):.2f}x (pairs {', '.join(f'{r:.2f}' for r in ratios)})")
PY
