#!/usr/bin/env bash
# Fuzzing for CI and for long local runs:
#   `bash fuzz/smoke.sh build`            compiles every target;
#   `bash fuzz/smoke.sh run SECONDS`      replays each target's committed seeds (fuzz/seeds/<t>)
#                                         and fuzzes it for SECONDS (new inputs in the ignored
#                                         fuzz/corpus/<t>, crashes in fuzz/artifacts/<t>/);
#   `bash fuzz/smoke.sh long SECONDS T…`  fuzzes targets T… for SECONDS each, then minimizes
#                                         what they found together with the seeds into
#                                         fuzz/seeds/<t> (commit it: CI then starts there).
#
# Why not `cargo fuzz`: it only adds compiler flags and runs the binaries, and installing it
# costs CI minutes on a fresh machine. The flags below are what cargo-fuzz 0.13 passes for
# `cargo fuzz build --dev --sanitizer none` (coverage instrumentation, `--cfg fuzzing`,
# debug assertions); an unoptimized build with overflow checks compiles in half the time of
# the optimized one and catches more per input; no sanitizer, as our code has no `unsafe`.
# Env: LNC_FUZZ_TARGET_DIR (default fuzz/target).
set -euo pipefail
cd "$(dirname "$0")"
TRIPLE=$(rustc -vV | awk '/^host:/ { print $2 }')
TARGET_DIR="${LNC_FUZZ_TARGET_DIR:-target}"
# Fuzzing needs no unstable feature, but libfuzzer-sys and older toolchains may; harmless.
export RUSTC_BOOTSTRAP=1
FLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
FLAGS+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cdebug-assertions"
case "$TRIPLE" in *-linux-*) FLAGS+=" -Cllvm-args=-sanitizer-coverage-stack-depth" ;; esac
targets() { awk -F'"' '/^name = / && prev == "[[bin]]" { print $2 } { prev = $0 }' Cargo.toml; }

case "${1:-}" in
  build)
    # --target: RUSTFLAGS then apply to the targets only, not to build scripts/proc macros.
    RUSTFLAGS="$FLAGS" cargo build --locked --target "$TRIPLE" --target-dir "$TARGET_DIR" --bins
    ;;
  run)
    secs="${2:?seconds}"
    for t in $(targets); do
      echo "-- fuzz $t"
      mkdir -p "corpus/$t" "artifacts/$t"
      mkdir -p "seeds/$t"
      # The first directory gets new inputs; the seeds are only read.
      "$TARGET_DIR/$TRIPLE/debug/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" \
        -rss_limit_mb=2048 "corpus/$t" "seeds/$t" 2>&1 | tail -n 3
      [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz target $t found a crash (see fuzz/artifacts/$t)" >&2; exit 1; }
    done
    ;;
  long)
    secs="${2:?seconds}"
    shift 2
    for t in "$@"; do
      bin="$TARGET_DIR/$TRIPLE/debug/$t"
      mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
      echo "-- fuzz $t for ${secs}s ($(date -u +%H:%M))"
      "$bin" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" -rss_limit_mb=2048 \
        -print_final_stats=1 "corpus/$t" "seeds/$t" 2>&1 | tail -n 12
      [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz target $t found a crash (see fuzz/artifacts/$t)" >&2; exit 1; }
      # Keep only inputs that add coverage, seeds first.
      rm -rf "seeds/$t.new" && mkdir -p "seeds/$t.new"
      "$bin" -merge=1 "seeds/$t.new" "seeds/$t" "corpus/$t" 2>&1 | tail -n 1
      rm -rf "seeds/$t" && mv "seeds/$t.new" "seeds/$t"
      echo "-- $t: $(ls "seeds/$t" | wc -l) seeds, $(du -sh "seeds/$t" | cut -f1)"
    done
    ;;
  *) echo "usage: bash fuzz/smoke.sh build | run SECONDS | long SECONDS TARGET…" >&2; exit 2 ;;
esac
