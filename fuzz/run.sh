#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 30), starting from the committed seeds in fuzz/seeds/,
# and fails if any target crashes: a panic, an abort, an input slower than 10 s, or more than 2 GB
# of memory. libFuzzer leaves the offending input in fuzz/artifacts/<target>/; copy it to
# fuzz/regressions/<target>/ once fixed, and the ordinary test run replays it from then on
# (tests/it/reliability_fuzz_seeds.rs).
#
#   fuzz/run.sh [SECONDS] [TARGET...]        e.g. fuzz/run.sh 60 prometheus
#
# Stable Rust is enough: the targets build with `--sanitizer none` (the code under test forbids
# `unsafe`, so AddressSanitizer, which needs nightly's -Zsanitizer, would add little), and libFuzzer
# still gets its coverage instrumentation from stable's -Cpasses=sancov-module.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a C++ compiler (libFuzzer is built
# from source). FUZZ_TARGET_DIR sets where the instrumented build goes (default fuzz/target).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(lab_yaml prometheus cpuprofile heapsnapshot)
target_dir=${FUZZ_TARGET_DIR:-fuzz/target}

cargo fuzz --version >/dev/null 2>&1 || {
  echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
}

echo "== building the fuzz targets (instrumented, release, stable)"
cargo fuzz build --sanitizer none --target-dir "$target_dir"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s from $(ls "fuzz/seeds/$target" | wc -l) seed(s)"
  mkdir -p "$work/$target" "fuzz/artifacts/$target"
  log="$work/$target.log"
  # New inputs go to the temporary corpus (first folder); the seeds are only read.
  if cargo fuzz run --sanitizer none --target-dir "$target_dir" "$target" \
      "$work/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    outcome=ok
  else
    outcome=CRASH
    failed+=("$target")
    tail -40 "$log" >&2
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  per_second=$(grep -o 'exec/s: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  corpus=$(ls "$work/$target" | wc -l)
  cover=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  summary+=("$(printf '%-13s %-5s %10s runs  %7s exec/s  coverage %5s  %5s new inputs' \
    "$target" "$outcome" "$runs" "$per_second" "$cover" "$corpus")")
done

echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
