#!/usr/bin/env bash
# Run the MCP Inspector CLI (@modelcontextprotocol/inspector-cli, installed by setup.sh)
# with the same "-- SERVER..." convention as the Python clients:
#
#   inspector_cli.sh [INSPECTOR_OPTIONS...] -- SERVER_COMMAND [SERVER_ARGS...]
#   e.g. inspector_cli.sh --method tools/list -- "$E2E_SERVER_EVERYTHING" stdio
#        inspector_cli.sh --method tools/call --tool-name echo --tool-arg message=hi -- SERVER...
#
# Output: the result JSON on stdout, exit 0; a JSON-RPC error goes to stderr
# ("Failed to ...: MCP error CODE: MESSAGE") with exit 1.
#
# It runs   cd <inspector-cli>/build && node index.js env [OPTIONS] -- -C "$PWD" SERVER_COMMAND [SERVER_ARGS]
# because (1) index.js wants the first word of the target before its options
# and passes everything after its first "--" through untouched (so a server
# command with its own "--", like mcp-policy proxy ... -- SERVER, survives);
# (2) inspector-cli 1.0.3 checks for "../package.json" relative to the current
# directory but imports it relative to its own module, so it only starts from a
# directory whose parent has a package.json - its build/ directory is one - and
# (3) `env -C` puts the server back in the caller's directory.
# E2E_DIR (default <repo>/target/e2e) is where setup.sh installed it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_DIR="${E2E_DIR:-$(cd "$HERE/../../.." && pwd)/target/e2e}"
BUILD="$E2E_DIR/node/node_modules/@modelcontextprotocol/inspector-cli/build"
[[ -f "$BUILD/index.js" ]] || { echo "inspector-cli not installed in $E2E_DIR (run setup.sh)" >&2; exit 2; }
opts=()
while [[ $# -gt 0 && "$1" != "--" ]]; do opts+=("$1"); shift; done
[[ $# -ge 2 ]] || { echo "usage: inspector_cli.sh [OPTIONS] -- SERVER_COMMAND [ARGS...]" >&2; exit 2; }
shift
# The server still runs in the caller's directory: `env -C` (GNU coreutils) changes back.
here="$PWD"
cd "$BUILD"
exec node index.js env "${opts[@]}" -- -C "$here" "$@"
