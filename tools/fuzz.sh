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
#   FUZZ_NO_BUILD=1 FUZZ_TARGETS="dicom nifti" tools/fuzz.sh 600   # after a `cargo fuzz build`
#
# Two invocations over disjoint FUZZ_TARGETS may run at once (e.g. one per core): cargo's lock
# serialises their builds, and each target has its own log, corpus and artifacts folder.
set -euo pipefail
seconds="${1:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
cd "$(dirname "$0")/../fuzz"
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
    cargo +nightly fuzz build -s "$sanitizer"
fi
mkdir -p logs
status=0
for target in $targets; do
    mkdir -p "corpus/$target"
    # rss_limit: a lying size that slipped past the memory budget shows up as an OOM crash.
    flags=(-max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1)
    if [ -n "${FUZZ_NO_BUILD:-}" ]; then
        # The binaries built before, run as `cargo fuzz run` would (so editing the engine while
        # a long run goes on neither rebuilds nor changes what is fuzzed).
        mkdir -p "artifacts/$target"
        run=(target/"$(rustc +nightly -vV | sed -n 's/^host: //p')"/release/"$target"
            -artifact_prefix="artifacts/$target/" "${flags[@]}" "corpus/$target")
    else
        run=(cargo +nightly fuzz run -s "$sanitizer" "$target" -- "${flags[@]}")
    fi
    if ! "${run[@]}" >"logs/$target.log" 2>&1; then
        status=1
        echo "$target: CRASH (see fuzz/logs/$target.log and fuzz/artifacts/$target/)"
    fi
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$target.log" | tail -n 1 || true)
    runs=$(grep -E '^stat::number_of_executed_units' "logs/$target.log" | awk '{print $2}' || true)
    echo "$target: ${runs:-?} executions; ${done_line:-no DONE line}"
done
exit "$status"
