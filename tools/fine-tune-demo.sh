#!/usr/bin/env bash
# The few-shot fine-tune a clinician runs from the app, on the command line, timed: the demo task,
# demo-cpu trained on fold 0 (the "current model"), three of fold 0's validation cases "corrected"
# (their ground truth saved as TASK/labelsCorrected/<id>.nii.gz, which is what a clinician's
# correction of the prediction ends as), then `mvl train --corrected --init-from` with the
# preset's fine-tune epochs and learning rate. Prints every step's wall time and each corrected
# case's Dice (mean over organ and lesion) against its corrected label, before and after.
# Usage: tools/fine-tune-demo.sh [WORK_DIR]   (MVL=path/to/mvl to skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
mvl="${MVL:-target/release/mvl}"
[ -x "$mvl" ] || cargo build --release -p engine --bin mvl
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
task="$work/T"
preset=configs/demo-cpu.toml

seconds() { python3 -c 'import time; print(f"{time.time():.3f}")'; }
elapsed() { python3 -c "print(f'{$(seconds) - $1:.1f}')"; }

rm -rf "$task" "$work/base" "$work/tuned" "$work/pred"
"$mvl" demo-data --out "$task" > /dev/null
start=$(seconds)
"$mvl" train --config "$preset" --data "$task" --fold 0 --out "$work/base" > "$work/base.log" 2>&1
echo "base training (demo-cpu, fold 0): $(elapsed "$start") s wall"

mapfile -t cases < <(python3 - "$work/base/splits.json" <<'PY'
import json, sys
print("\n".join(json.load(open(sys.argv[1]))["folds"][0]["val"][:3]))
PY
)
mkdir -p "$task/labelsCorrected" "$work/pred"

# Mean Dice over every class in `mvl metrics --json`.
mean_dice() {
  "$mvl" metrics --pred "$1" --gt "$2" --json | python3 -c '
import json, sys
classes = json.load(sys.stdin)["classes"]
print("%.3f" % (sum(c["dice"] for c in classes.values()) / len(classes)))'
}

declare -A before
for id in "${cases[@]}"; do
  cp "$task/labelsTr/$id.nii.gz" "$task/labelsCorrected/$id.nii.gz"
  "$mvl" predict --checkpoint "$work/base/best" --input "$task/imagesTr/$id.nii.gz" \
    --out "$work/pred/$id-before.nii.gz" > /dev/null
  before[$id]=$(mean_dice "$work/pred/$id-before.nii.gz" "$task/labelsCorrected/$id.nii.gz")
done

start=$(seconds)
"$mvl" train --config "$preset" --data "$task" --fold 0 --corrected --init-from "$work/base/best" \
  --out "$work/tuned" > "$work/tuned.log" 2>&1
echo "fine-tune on ${#cases[@]} corrected cases: $(elapsed "$start") s wall"

echo "| case | Dice before | Dice after |"
echo "|---|---|---|"
for id in "${cases[@]}"; do
  "$mvl" predict --checkpoint "$work/tuned/best" --input "$task/imagesTr/$id.nii.gz" \
    --out "$work/pred/$id-after.nii.gz" > /dev/null
  after=$(mean_dice "$work/pred/$id-after.nii.gz" "$task/labelsCorrected/$id.nii.gz")
  echo "| $id | ${before[$id]} | $after |"
done
echo "logs: $work/base.log, $work/tuned.log"
