#!/usr/bin/env python3
"""A line-level MCP server for the proxy's tests (Python standard library only).

It answers what the proxy's behaviour depends on and nothing more:

  initialize              -> protocolVersion as asked, serverInfo.pid = this process's pid
  tools/list              -> echo, crash, fail, toolerr, slow, secret
  tools/call echo         -> {"content": [{"type": "text", "text": <arguments as JSON>}]}
  tools/call crash        -> exits at once with status 3, without answering
  tools/call fail         -> a JSON-RPC error (the tool never ran)
  tools/call toolerr      -> a result with isError: true (the tool ran and failed)
  tools/call slow         -> answers after arguments.ms milliseconds
  tools/call hold         -> no answer until a release_all call
  tools/call release_all  -> answers every held call, then itself
  raw/echo (any id)       -> {"raw": <the exact line received, without its newline>}
  anything else with id   -> {"method": <method>}
  ping/notify (notification) -> sends notifications/message with the params it got

Every line it reads is also appended to $LINE_SERVER_LOG when that is set.
"""

import json
import os
import sys
import threading

out_lock = threading.Lock()
held = []
log_path = os.environ.get("LINE_SERVER_LOG")


def send(message):
    with out_lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def answer(msg_id, result):
    send({"jsonrpc": "2.0", "id": msg_id, "result": result})


def handle(raw):
    msg = json.loads(raw)
    method = msg.get("method")
    msg_id = msg.get("id")
    params = msg.get("params") or {}
    if method == "initialize":
        answer(msg_id, {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "line-server", "version": "1", "pid": os.getpid()},
        })
    elif method == "tools/list":
        answer(msg_id, {"tools": [{"name": n, "inputSchema": {"type": "object"}}
                                  for n in ["echo", "crash", "fail", "toolerr", "slow", "secret"]],
                        "nextCursor": "page-2"})
    elif method == "tools/call":
        name = params.get("name")
        args = params.get("arguments") or {}
        if name == "crash":
            os._exit(3)
        elif name == "fail":
            send({"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32000, "message": "it broke"}})
        elif name == "toolerr":
            answer(msg_id, {"content": [{"type": "text", "text": "ran and failed"}], "isError": True})
        elif name == "hold":
            held.append(msg_id)
        elif name == "release_all":
            for h in held:
                answer(h, {"content": [{"type": "text", "text": "released"}]})
            answer(msg_id, {"content": [{"type": "text", "text": str(len(held))}]})
            held.clear()
        elif name == "slow":
            threading.Timer(args.get("ms", 100) / 1000.0,
                            lambda: answer(msg_id, {"content": [{"type": "text", "text": "slow done"}]})).start()
        else:
            answer(msg_id, {"content": [{"type": "text", "text": json.dumps(args, sort_keys=True)}]})
    elif method == "raw/echo":
        answer(msg_id, {"raw": raw})
    elif method == "ping/notify" and msg_id is None:
        send({"jsonrpc": "2.0", "method": "notifications/message", "params": params})
    elif msg_id is not None and method is not None:
        answer(msg_id, {"method": method})


def main():
    for line in sys.stdin:
        raw = line[:-1] if line.endswith("\n") else line
        if log_path:
            with open(log_path, "a") as log:
                log.write(raw + "\n")
        if raw.strip():
            handle(raw)


if __name__ == "__main__":
    main()
