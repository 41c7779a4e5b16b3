#!/usr/bin/env bash
# Prove the e2e clients against the real servers, directly or through a relay.
#
#   selftest.sh [DIR] [-- PREFIX...]
#
# DIR: install dir for setup.sh (default <repo>/target/e2e; installed if needed).
# PREFIX: words put in front of every server command line, e.g.
#   selftest.sh target/e2e -- "$E2E_PYTHON" wiretap.py --log /tmp/w.jsonl --
#   selftest.sh target/e2e -- target/debug/mcp-policy proxy --policy allow-all.toml --
# (the expectations are those of a transparent relay: use an allow-everything policy).
# Prints one "ok - NAME" / "FAIL - NAME" line per check, then "N passed, N failed";
# exits 1 when a check failed. A failing check's output is kept in $TMP (printed).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR=""
if [[ $# -gt 0 && "$1" != "--" ]]; then DIR="$1"; shift; fi
PREFIX=()
if [[ $# -gt 0 && "$1" == "--" ]]; then shift; PREFIX=("$@"); fi

bash "$HERE/setup.sh" ${DIR:+"$DIR"} >/dev/null || { echo "setup.sh failed" >&2; exit 2; }
DIR="${DIR:-$(cd "$HERE/../../.." && pwd)/target/e2e}"
# shellcheck disable=SC1091
. "$DIR/env.sh"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/mcp-e2e-selftest.XXXXXX")"
mkdir -p "$TMP/files" "$TMP/repo"
echo "hello from the e2e files" >"$TMP/files/a.txt"
git -C "$TMP/repo" init -q
echo x >"$TMP/repo/f"
git -C "$TMP/repo" add f
git -C "$TMP/repo" -c user.name=e2e -c user.email=e2e@localhost commit -qm "e2e initial commit"

PY="$E2E_PYTHON"
LEGACY=("$PY" "$E2E_CLIENT_LEGACY")
NEW=("$PY" "$E2E_CLIENT_NEW")
EVERYTHING=("$E2E_SERVER_EVERYTHING" stdio)
FIXTURE=("$PY" "$E2E_FIXTURE_SERVER")
TIME=("$E2E_SERVER_TIME" --local-timezone UTC)
GIT=("$E2E_SERVER_GIT" --repository "$TMP/repo")
FILES=("$E2E_SERVER_FILESYSTEM" "$TMP/files")

passed=0
failed=0
n=0
# check NAME CMD... : passes when CMD exits 0 (the clients bound themselves: --total-timeout, default 25 s)
check() {
    local name="$1"; shift
    n=$((n + 1))
    local out="$TMP/check-$n.out"
    "$@" >"$out" 2>&1
    local rc=$?
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1)); echo "ok - $name"
    else
        failed=$((failed + 1)); echo "FAIL - $name (exit $rc; output in $out)"
    fi
}
run() { # run CLIENT... -- SERVER...   (PREFIX inserted before SERVER)
    local args=()
    while [[ "$1" != "--" ]]; do args+=("$1"); shift; done
    shift
    "${args[@]}" -- "${PREFIX[@]}" "$@"
}
inspector_has() { # inspector_has TEXT INSPECTOR_ARGS... -- SERVER...
    local want="$1"; shift
    local args=()
    while [[ "$1" != "--" ]]; do args+=("$1"); shift; done
    shift
    timeout 30 "$E2E_INSPECTOR" "${args[@]}" -- "${PREFIX[@]}" "$@" | tee /dev/stderr | grep -qF "$want"
}

S="$HERE/scenarios"
check "legacy client, server-everything tour (progress, sampling, elicitation, logging, resources, prompts)" \
    run "${LEGACY[@]}" steps "@$S/everything.json" --wait 1 --expect-logs-min 1 -- "${EVERYTHING[@]}"
check "new client mode=auto, server-everything (falls back to 2025-11-25)" \
    run "${NEW[@]}" --mode auto steps "@$S/everything.json" --expect-protocol 2025-11-25 -- "${EVERYTHING[@]}"
for answer in decline cancel; do
    check "legacy client, server-everything elicitation answered $answer" \
        run "${LEGACY[@]}" call trigger-elicitation-request --elicit "$answer" --expect ok --expect-elicitations 1 \
        --expect-text "\\\"action\\\": \\\"$answer\\\"" -- "${EVERYTHING[@]}"
done
check "legacy client, elicitation answer slower than the client's timeout" \
    run "${LEGACY[@]}" call trigger-elicitation-request --elicit sleep --elicit-sleep 3 --timeout 1 \
    --expect timeout --expect-elicitations 1 -- "${EVERYTHING[@]}"
check "legacy client, fixture server" \
    run "${LEGACY[@]}" steps "@$S/fixture.json" --expect-protocol 2025-11-25 -- "${FIXTURE[@]}"
check "new client mode=2026-07-28, fixture server (input_required rounds)" \
    run "${NEW[@]}" --mode 2026-07-28 steps "@$S/fixture.json" --expect-protocol 2026-07-28 -- "${FIXTURE[@]}"
check "new client mode=auto, fixture server (discovers 2026-07-28)" \
    run "${NEW[@]}" --mode auto steps "@$S/fixture.json" --expect-protocol 2026-07-28 -- "${FIXTURE[@]}"
check "new client, approval declined through input_required" \
    run "${NEW[@]}" call approve_action '{"action": "deploy"}' --elicit decline --expect ok \
    --expect-text "declined: deploy" -- "${FIXTURE[@]}"
check "new client, approval accepted with approve=false" \
    run "${NEW[@]}" call approve_action '{"action": "deploy"}' --elicit-content '{"approve": false}' --expect ok \
    --expect-text "rejected: deploy" -- "${FIXTURE[@]}"
check "new client, raw InputRequiredResult" \
    run "${NEW[@]}" --input-required raw call approve_action '{"action": "deploy"}' --expect input-required \
    --expect-text inputRequests --expect-text requestState -- "${FIXTURE[@]}"
# resources, templates, prompts, completion, subscriptions, tool annotations
check "legacy client, fixture surface (annotated tools, resources, templates, prompts, completion)" \
    run "${LEGACY[@]}" steps "@$S/fixture-surface.json" --expect-protocol 2025-11-25 -- "${FIXTURE[@]}"
check "new client mode=2026-07-28, fixture surface" \
    run "${NEW[@]}" --mode 2026-07-28 steps "@$S/fixture-surface.json" --expect-protocol 2026-07-28 -- "${FIXTURE[@]}"
check "legacy client, fixture tool annotations listed" \
    run "${LEGACY[@]}" list-tools --full --expect ok --expect-text '"destructiveHint": true' \
    --expect-text '"readOnlyHint": true' -- "${FIXTURE[@]}"
check "legacy client, fixture resources/subscribe then notifications/resources/updated, unsubscribe" \
    run "${LEGACY[@]}" steps '[{"op": "subscribe", "uri": "fixture://docs/readme",
        "expect": {"status": "ok", "notifications": "notifications/resources/updated"}},
      {"op": "unsubscribe", "uri": "fixture://docs/readme", "expect": {"status": "ok"}}]' -- "${FIXTURE[@]}"
check "new client mode=2026-07-28, resources/subscribe is gone -> -32601" \
    run "${NEW[@]}" --mode 2026-07-28 subscribe fixture://docs/readme --expect error --expect-code -32601 -- "${FIXTURE[@]}"
check "new client mode=2026-07-28, subscriptions/listen + touch -> ResourceUpdated" \
    run "${NEW[@]}" --mode 2026-07-28 steps '[{"op": "listen", "uri": "fixture://docs/readme", "seconds": 0.5,
      "call": {"name": "touch", "args": {"uri": "fixture://docs/readme"}},
      "expect": {"status": "ok", "text": ["\"resourceSubscriptions\": [\"fixture://docs/readme\"]", "\"event\": \"ResourceUpdated\""]}}]' \
    -- "${FIXTURE[@]}"
check "new client mode=2026-07-28, list results carry ttlMs/cacheScope on the wire" \
    run "${NEW[@]}" --mode 2026-07-28 list-resources --expect ok \
    --expect-text '"on_wire": ["ttlMs", "cacheScope", "_meta"]' -- "${FIXTURE[@]}"
check "legacy client, server-everything surface (resources, templates, prompts, completion, subscribe)" \
    run "${LEGACY[@]}" steps "@$S/everything-surface.json" -- "${EVERYTHING[@]}"
check "new client mode=auto, server-everything surface" \
    run "${NEW[@]}" --mode auto steps "@$S/everything-surface.json" --expect-protocol 2025-11-25 -- "${EVERYTHING[@]}"
for client in LEGACY NEW; do
    declare -n C="$client"
    check "${client,,} client, mcp-server-time get_current_time" \
        run "${C[@]}" call get_current_time '{"timezone": "Europe/Paris"}' --expect ok --expect-text Europe/Paris -- "${TIME[@]}"
    check "${client,,} client, mcp-server-time unknown tool -> JSON-RPC error -32602" \
        run "${C[@]}" call no_such_tool '{}' --expect error --expect-code -32602 -- "${TIME[@]}"
    check "${client,,} client, mcp-server-git git_log" \
        run "${C[@]}" call git_log "{\"repo_path\": \"$TMP/repo\"}" --expect ok --expect-text "e2e initial commit" -- "${GIT[@]}"
    check "${client,,} client, mcp-server-git outside --repository -> isError" \
        run "${C[@]}" call git_status '{"repo_path": "/"}' --expect is-error -- "${GIT[@]}"
    unset -n C
done
check "new client mode=auto, mcp-server-time speaks 2026-07-28" \
    run "${NEW[@]}" --mode auto info --expect-protocol 2026-07-28 -- "${TIME[@]}"
check "legacy client, server-filesystem read_text_file" \
    run "${LEGACY[@]}" call read_text_file "{\"path\": \"$TMP/files/a.txt\"}" --expect ok \
    --expect-text "hello from the e2e files" -- "${FILES[@]}"
check "legacy client, server-filesystem outside the allowed directory -> isError" \
    run "${LEGACY[@]}" call read_text_file '{"path": "/etc/hostname"}' --expect is-error \
    --expect-text "outside allowed directories" -- "${FILES[@]}"
check "inspector CLI tools/list, server-everything" \
    inspector_has '"name": "trigger-long-running-operation"' --method tools/list -- "${EVERYTHING[@]}"
check "inspector CLI tools/call echo, server-everything" \
    inspector_has '"text": "Echo: from inspector"' --method tools/call --tool-name echo \
    --tool-arg "message=from inspector" -- "${EVERYTHING[@]}"
check "inspector CLI tools/call, mcp-server-time" \
    inspector_has '"timezone": "UTC"' --method tools/call --tool-name get_current_time --tool-arg timezone=UTC \
    -- "${TIME[@]}"

echo "$passed passed, $failed failed"
if [[ $failed -eq 0 ]]; then rm -rf "$TMP"; exit 0; fi
echo "outputs kept in $TMP" >&2
exit 1
