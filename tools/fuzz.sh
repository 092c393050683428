#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), one after another, and
# prints libFuzzer's final line per target (executions, coverage, corpus). Not part of .ci/run.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Crashes are written to
# fuzz/artifacts/TARGET/; each one found must become a regression test in the engine.
#
#   tools/fuzz.sh 600            # the ten minutes per target the reliability issue asks for
#   FUZZ_TARGETS="nifti" tools/fuzz.sh 60
#   FUZZ_SANITIZER=address tools/fuzz.sh 60   # default: none (the engine forbids unsafe code)
set -euo pipefail
seconds="${1:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
cd "$(dirname "$0")/../fuzz"
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
cargo +nightly fuzz build -s "$sanitizer"
mkdir -p logs
status=0
for target in $targets; do
    mkdir -p "corpus/$target"
    # rss_limit: a lying size that slipped past the memory budget shows up as an OOM crash.
    if ! cargo +nightly fuzz run -s "$sanitizer" "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        >"logs/$target.log" 2>&1; then
        status=1
        echo "$target: CRASH (see fuzz/logs/$target.log and fuzz/artifacts/$target/)"
    fi
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$target.log" | tail -n 1 || true)
    runs=$(grep -E '^stat::number_of_executed_units' "logs/$target.log" | awk '{print $2}' || true)
    echo "$target: ${runs:-?} executions; ${done_line:-no DONE line}"
done
exit "$status"
