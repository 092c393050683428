#!/usr/bin/env bash
# One prepared GPU check (issue 13), ≤ 8 minutes on an H100/H200: ours against PyTorch on the
# official-code preset, then a short real training run, predict and activations, all as JSON in
# one folder. Runs on a GPU machine with the CUDA toolkit, python3 + torch (+ transformers), no
# Rust and no network: carry a release `mvl` built elsewhere (`cargo build --release -p engine
# --bin mvl`) and this repository's configs/ and engine/benches/reference/.
#
# Usage:  tools/gpu-check.sh                  # on the GPU machine
#         DRY_RUN=1 tools/gpu-check.sh        # the same steps on the CPU with tiny settings
# Environment: MVL (the binary; default target/release/mvl, then ./mvl), OUT (the output folder;
# default gpu-check-out), DEVICE (cuda; wgpu works for ours only), PYTHON (python3), TORCH_DEVICE
# (the PyTorch side of a dry run: cpu, or cuda for a quick first look on a GPU machine).
#
# Every step runs under its own time limit and the script goes on after a failure; each step's
# JSON (or, for commands that print text, a JSON record of exit code, seconds and log file) is
# in $OUT, and $OUT/summary.json lists them all. The exit code is the number of failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."

dry_run="${DRY_RUN:-0}"
out="${OUT:-gpu-check-out}"
python="${PYTHON:-python3}"
mvl="${MVL:-}"
if [ -z "$mvl" ]; then
    for candidate in target/release/mvl ./mvl; do
        if [ -x "$candidate" ]; then mvl="$candidate"; break; fi
    done
fi
if [ -z "$mvl" ] || [ ! -x "$mvl" ]; then
    echo "gpu-check: no mvl binary (set MVL=PATH; build it with cargo build --release -p engine --bin mvl)" >&2
    exit 100
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$out/work"
mkdir -p "$work"

if [ "$dry_run" = 1 ]; then
    # The logic of every step on the CPU in about a minute: a 16³ preset (64 tokens), one timed
    # iteration, a 16³ phantom task, one epoch.
    device="${DEVICE:-cpu}"
    torch_device="${TORCH_DEVICE:-cpu}"
    preset="$work/tiny.toml"
    cat > "$preset" <<'TOML'
[model]
name = "gpu-check-dry-run"
kind = "medvisionllama"
image_size = [16, 16, 16]
patch_size = 4
embed_dim = 16
decoder_depth = 1
num_heads = 2
mlp_dim = 32
dropout = 0.1

[model.llm]
hidden = 32
heads = 4
kv_heads = 2
intermediate = 64

[training]
epochs = 1
batch_size = 2
learning_rate = 1e-3
TOML
    bench_preset="$preset"
    train_preset="$preset"
    batches=(1 2)
    bench_iters=(--warmup 0 --iters 1)
    data_size=16
    cases=12
    epochs=1
    limit_bench=120
    limit_train=300
else
    device="${DEVICE:-cuda}"
    torch_device=cuda
    bench_preset=configs/official-code.toml
    train_preset=configs/official-code.toml
    batches=(1 4)
    bench_iters=(--warmup 2 --iters 5)
    data_size=128
    cases=10
    epochs=2
    limit_bench=75
    limit_train=150
fi

failed=0
records=()
# The whole script stays under TOTAL_SECONDS (default 7.5 minutes): each step's limit is cut
# to what is left, and steps that would start with under 10 s left are skipped (and count as
# failed).
total_seconds="${TOTAL_SECONDS:-450}"
deadline=$(($(date +%s) + total_seconds))

# step NAME LIMIT_SECONDS JSON_FILE -- COMMAND...: runs COMMAND with stdout to JSON_FILE when it
# prints JSON (JSON_FILE non-empty), else to a log; records exit code and wall seconds.
step() {
    local name="$1" limit="$2" json="$3"
    shift 4
    local log="$out/$name.log" started ended code left
    left=$((deadline - $(date +%s)))
    if [ "$left" -lt 10 ]; then
        failed=$((failed + 1))
        echo "gpu-check: $name SKIPPED (the ${total_seconds}s budget is spent)" >&2
        records+=("{\"step\": \"$name\", \"exit_code\": null, \"skipped\": true}")
        return
    fi
    [ "$limit" -gt "$left" ] && limit="$left"
    started=$(date +%s.%N)
    if [ -n "$json" ]; then
        timeout --kill-after=10 "$limit" "$@" > "$out/$json" 2> "$log"
    else
        timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
    fi
    code=$?
    ended=$(date +%s.%N)
    local seconds
    seconds=$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.2f", b - a }')
    if [ "$code" -ne 0 ]; then
        failed=$((failed + 1))
        echo "gpu-check: $name FAILED (exit $code after ${seconds}s; $log)" >&2
        [ -n "$json" ] && [ ! -s "$out/$json" ] && rm -f "$out/$json"
    else
        echo "gpu-check: $name ok (${seconds}s)" >&2
    fi
    records+=("{\"step\": \"$name\", \"exit_code\": $code, \"seconds\": $seconds, \"json\": \"${json}\", \"log\": \"$name.log\"}")
}

# 1. PyTorch reference (SDPA attention): fp32, fp32 with TF32 matmuls, and bf16 autocast, the same
# batches. First, because it takes seconds: on a machine whose kernel cache is empty, our first
# step compiles and autotunes for longer than the whole budget (docs/GPU.md), and the reference
# numbers should come back anyway.
for mode in fp32 tf32 bf16-autocast; do
    for batch in "${batches[@]}"; do
        step "torch-$mode-b$batch" "$limit_bench" "torch-$mode-b$batch.json" -- \
            "$python" engine/benches/reference/bench.py --config "$bench_preset" --device "$torch_device" \
            --batch "$batch" --mode "$mode" "${bench_iters[@]}"
    done
done

# 2. Ours: f32 and bf16, each batch. The first step also compiles (NVRTC) and autotunes the
# kernels, so it gets twice the time.
first_limit=$((limit_bench * 2))
for dtype in f32 bf16; do
    for batch in "${batches[@]}"; do
        step "ours-$dtype-b$batch" "$first_limit" "ours-$dtype-b$batch.json" -- \
            "$mvl" bench --config "$bench_preset" --device "$device" --batch "$batch" --dtype "$dtype" \
            "${bench_iters[@]}" --json
        first_limit="$limit_bench"
    done
    step "estimate-$dtype-b${batches[-1]}" 30 "estimate-$dtype-b${batches[-1]}.json" -- \
        "$mvl" bench --config "$bench_preset" --batch "${batches[-1]}" --dtype "$dtype" --estimate --json
done

# 3. A real training run on a phantom task of the model's grid size.
task="$work/task"
run="$work/run"
rm -rf "$task" "$run"
step demo-data 120 "" -- \
    "$mvl" demo-data --out "$task" --cases "$cases" --test-cases 1 --size "$data_size,$data_size,$data_size" --seed 13
step train "$limit_train" "" -- \
    "$mvl" train --config "$train_preset" --data "$task" --fold 0 --epochs "$epochs" --out "$run" --device "$device"
[ -f "$run/history.json" ] && cp "$run/history.json" "$out/train-history.json"

# 4. Predict and activations with the trained checkpoint (wall time includes loading the model).
scan="$(ls "$task"/imagesTs/*.nii.gz 2> /dev/null | head -n 1)"
step predict 120 "" -- \
    "$mvl" predict --checkpoint "$run/best" --input "$scan" --out "$work/predicted.nii.gz" --device "$device"
step activations 120 "" -- \
    "$mvl" activations --checkpoint "$run/best" --input "$scan" --out "$work/activations" --device "$device"

# 5. The machine, and the summary.
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null || echo "no nvidia-smi"
    "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2> /dev/null || echo "no torch"
} > "$out/machine.txt"
{
    echo "{"
    echo "  \"dry_run\": $([ "$dry_run" = 1 ] && echo true || echo false),"
    echo "  \"device\": \"$device\","
    echo "  \"failed_steps\": $failed,"
    echo "  \"steps\": ["
    for i in "${!records[@]}"; do
        separator=","
        [ "$i" -eq $((${#records[@]} - 1)) ] && separator=""
        echo "    ${records[$i]}$separator"
    done
    echo "  ]"
    echo "}"
} > "$out/summary.json"

# 6. The table: ours against PyTorch, ms/sample, TFLOP/s, peak memory.
"$python" - "$out" > "$out/table.md" 2> /dev/null <<'PY' || echo "gpu-check: no table (python3 failed)" >&2
import glob, json, os, sys
out = sys.argv[1]
rows = ["| run | train ms/sample | train TFLOP/s | inference ms/sample | inference TFLOP/s | peak GiB |",
        "|---|---|---|---|---|---|"]
for path in sorted(glob.glob(os.path.join(out, "ours-*.json")) + glob.glob(os.path.join(out, "torch-*.json"))):
    try:
        r = json.load(open(path))
    except (OSError, ValueError):
        continue
    peak = r.get("peak_memory_bytes")
    rows.append("| {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {} |".format(
        os.path.basename(path)[:-5], r["train_step_ms_per_sample"], r["train_tflops"],
        r["inference_ms_per_sample"], r["inference_tflops"],
        "—" if peak is None else "{:.2f}".format(peak / 2**30)))
print("\n".join(rows))
PY
cat "$out/table.md" 2> /dev/null
echo "gpu-check: $failed failed step(s); results in $out" >&2
exit "$failed"
