#!/usr/bin/env bash
# Builds `mcp-policy` with profile-guided optimisation (PGO), the build docs/PERFORMANCE.md
# measures the HTTP gateway's targets with:
#
#   1. an instrumented build (`-Cprofile-generate`);
#   2. training: the instrumented binary runs the HTTP load test (one gateway, and two replicas
#      when redis-server is installed; nginx is not needed), the stdio proxy benchmark and the
#      demo replay (`eval`);
#   3. the optimised build (`-Cprofile-use`), with the workspace's release profile (fat LTO).
#
# usage: bash scripts/pgo.sh [OUT]     (OUT defaults to target/pgo)
# The last line of standard output is the optimised binary's path. Needs rustup's
# `llvm-tools` component (installed here when missing) for `llvm-profdata`. The training runs
# the benches, which `cargo bench` builds in target/ first when they are not built yet.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$PWD/target/pgo}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ! ls "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-profdata >/dev/null 2>&1; then
  rustup component add llvm-tools >&2
fi
profdata=$(ls "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-profdata 2>/dev/null | head -n 1)
if [ ! -x "$profdata" ]; then
  echo "pgo: llvm-profdata not found; run: rustup component add llvm-tools" >&2
  exit 1
fi
# Naming the host as the target keeps RUSTFLAGS off build scripts and proc macros: only the
# binary's own code is instrumented, and only its runs write profiles.
host=$(rustc -vV | sed -n 's/^host: //p')

echo "pgo: instrumented build" >&2
rm -rf "$out/raw"
mkdir -p "$out/raw"
RUSTFLAGS="-Cprofile-generate=$out/raw" CARGO_TARGET_DIR="$out/gen" \
  cargo build --release --target "$host" -p mcp-policy-cli --bin mcp-policy >&2
gen="$out/gen/$host/release/mcp-policy"

echo "pgo: training (log: $out/training.log)" >&2
# Chained with &&: inside a `||` list bash does not stop at a failing command, so each step
# has to pass for the next to run.
{
  BENCH_GATEWAY_BIN="$gen" cargo bench --workspace --bench http -- 1,4,16 2000 1 &&
    BENCH_PROXY_BIN="$gen" cargo bench --workspace --bench proxy -- --quick &&
    "$gen" eval --policy examples/policies/security-scanner.json examples/calls.jsonl >/dev/null
} >"$out/training.log" 2>&1 || {
  tail -n 20 "$out/training.log" >&2
  echo "pgo: training failed" >&2
  exit 1
}
if ! ls "$out/raw"/*.profraw >/dev/null 2>&1; then
  echo "pgo: the training wrote no profile to $out/raw" >&2
  exit 1
fi
"$profdata" merge -o "$out/merged.profdata" "$out/raw"

echo "pgo: optimised build" >&2
# From scratch: cargo does not track the profile's contents, so a kept build would reuse
# crates optimised with an earlier profile.
rm -rf "$out/use"
RUSTFLAGS="-Cprofile-use=$out/merged.profdata" CARGO_TARGET_DIR="$out/use" \
  cargo build --release --target "$host" -p mcp-policy-cli --bin mcp-policy >&2
echo "$out/use/$host/release/mcp-policy"
