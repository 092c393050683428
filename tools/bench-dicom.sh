#!/usr/bin/env bash
# Loading a 512×512×300 CT series: `mvl info DIR` (scan, sort, decode, rescale, statistics)
# against pydicom + numpy doing the same (tools/bench_dicom.py load). Needs python3 with pydicom
# and numpy, and a built `mvl` (MVL=path/to/mvl, default target/release/mvl).
# Usage: tools/bench-dicom.sh [RUNS]   — prints each run's wall time and the medians.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runs="${1:-5}"
mvl="${MVL:-$here/../target/release/mvl}"
series="${BENCH_DICOM_DIR:-/tmp/mvl-bench-dicom-512x512x300}"
if [ ! -f "$series/.complete" ]; then
    echo "writing the series to $series …"
    rm -rf "$series"
    python3 "$here/bench_dicom.py" write "$series"
    touch "$series/.complete"
fi
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
time_once() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); echo "$end - $start" | bc; }
"$mvl" info "$series" >/dev/null  # warm-up: the files are in the page cache for both
mvl_times=() py_times=()
for _ in $(seq "$runs"); do
    mvl_times+=("$(time_once "$mvl" info "$series")")
    py_times+=("$(time_once python3 "$here/bench_dicom.py" load "$series")")
done
m=$(printf '%s\n' "${mvl_times[@]}" | median)
p=$(printf '%s\n' "${py_times[@]}" | median)
echo "mvl info:        ${mvl_times[*]} s  (median $m s)"
echo "pydicom + numpy: ${py_times[*]} s  (median $p s)"
echo "ratio mvl/python: $(echo "scale=3; $m / $p" | bc)"
