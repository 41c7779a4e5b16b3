#!/usr/bin/env python3
"""Writes a large deterministic `mcp-policy eval` replay against
examples/policies/security-scanner.json: N lines (default 200000) on stdout.

    python3 benches/gen_replay.py 200000 > /tmp/replay.jsonl
"""
import json
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
t = 1_795_255_200_000
tools = ["list_scans", "get_scan_results", "start_security_scan", "stop_scan", "unknown_tool"]
out = sys.stdout
for i in range(n):
    t += 7
    tool = tools[i % len(tools)]
    args = {}
    if tool == "start_security_scan":
        args = {"target": f"staging-{i % 13}", "depth": "quick"}
    elif tool == "get_scan_results":
        args = {"scan_id": f"s-{i}"}
    elif tool == "stop_scan":
        args = {"scan_id": f"s-{i}"}
    line = {"tool": tool, "args": args, "grant": f"grant-{i % 97}", "at": t}
    out.write(json.dumps(line) + "\n")
