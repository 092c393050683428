#!/usr/bin/env bash
# Differential check of the DICOM length guard against dicom-rs (docs/RELIABILITY.md): the
# dicom fuzz corpus, then ROUNDS × 20 000 random mutants of it (mutate.py), each file through
# the guard and, where it passes, through dicom-rs under a 250 MB address-space limit. Prints
# every file the guard passed and dicom-rs could not reserve memory for (copied to
# $OUT/gaps/), or for which it aborted; nothing else when all is well.
#   tools/dicom-guard-diff/run.sh [ROUNDS]    (default 10; OUT defaults to a temporary folder)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rounds="${1:-10}"
corpus="$here/../../fuzz/corpus/dicom"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out/mutants" "$out/gaps"
cargo build --quiet --release --manifest-path "$here/Cargo.toml" \
    --target-dir "${CARGO_TARGET_DIR:-$HOME/.cache/medvisionllama-studio}/dicom-guard-diff"
probe="${CARGO_TARGET_DIR:-$HOME/.cache/medvisionllama-studio}/dicom-guard-diff/release/dicom-guard-diff"
check() { # files in folder $1
    (cd "$1" && ls | xargs -n 1000 sh -c 'ulimit -v 250000; "$0" "$@" || echo "ABORT in a batch starting at $1 (exit $?)"' "$probe")
}
status=0
report() { # folder $1, gaps copied with prefix $2
    while read -r line; do
        echo "$line"
        status=1
        file="$(echo "$line" | sed -n 's/^GAP \([^:]*\):.*/\1/p')"
        if [ -n "$file" ]; then
            cp "$1/$file" "$out/gaps/$2-$file"
        fi
    done < <(check "$1")
}
report "$corpus" corpus
for round in $(seq 1 "$rounds"); do
    python3 "$here/mutate.py" "$round" 20000 "$corpus" "$out/mutants"
    report "$out/mutants" "r$round"
done
echo "dicom-guard-diff: $(ls "$corpus" | wc -l) corpus files and $rounds × 20000 mutants checked; $(ls "$out/gaps" | wc -l) gaps (in $out/gaps)"
exit $status
