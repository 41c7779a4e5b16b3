#!/usr/bin/env bash
# Runs every test of the workspace on this machine, installing first what the tests need and
# this machine lacks:
#   - Debian packages: redis-server (the Redis tests start their own servers), git (the
#     mcp-server-git end-to-end tests), python3-venv (the pinned Python MCP parts),
#     prometheus (the metrics tests' scraper, and promtool for the alert rules);
#   - the pinned MCP clients and servers of the end-to-end tests (PyPI and npm), into
#     target/e2e (mcp-policy-cli/tests/e2e/setup.sh).
# As root, missing Debian packages are installed with apt-get; otherwise the exact command is
# printed and the script stops. Node.js 20 and Python 3.10+ must be there already.
#
#   scripts/test.sh               install what is missing, then `cargo test --workspace`
#   scripts/test.sh --deps-only   install what is missing, run nothing
#   scripts/test.sh -- ARGS...    ARGS go to `cargo test --workspace` (e.g. `-- -p mcp-policy`)
set -euo pipefail
cd "$(dirname "$0")/.."

deps_only=false
cargo_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --deps-only) deps_only=true ;;
    --) shift; cargo_args=("$@"); break ;;
    *) echo "usage: scripts/test.sh [--deps-only] [-- CARGO_TEST_ARGS...]" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '[test.sh] %s\n' "$*" >&2; }

# Debian packages: the command each needs, and the package that provides it.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v git >/dev/null 2>&1 || missing+=(git)
# Prometheus: the metrics tests scrape the gateway with a real one; promtool tests the alert
# rules (scripts/check-deploy.sh).
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian's redis-server package starts a system service on port 6379; the tests start
    # their own servers on free ports.
    (service redis-server stop || systemctl stop redis-server || true) >/dev/null 2>&1
    # Debian's prometheus package starts one on port 9090 (and a node exporter) where it can;
    # the tests start their own.
    (service prometheus stop || systemctl stop prometheus || true) >/dev/null 2>&1
    (service prometheus-node-exporter stop || systemctl stop prometheus-node-exporter || true) >/dev/null 2>&1
  else
    say "missing: ${missing[*]}; install them, then run this again:"
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
for tool in python3 node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    say "missing: $tool (the end-to-end tests need Python 3.10+ and Node.js 20 with npm)"
    exit 1
  fi
done
redis-server --version >&2

say "end-to-end clients and servers (pinned, into target/e2e)"
bash mcp-policy-cli/tests/e2e/setup.sh "$PWD/target/e2e" >/dev/null

if $deps_only; then
  exit 0
fi
exec cargo test --workspace ${cargo_args[@]+"${cargo_args[@]}"}
