#!/usr/bin/env python3
"""A transparent stdio relay that records the MCP traffic passing through it.

    wiretap.py --log FILE [--label NAME] -- COMMAND [ARGS...]

Spawns COMMAND, copies this process's stdin to the child's stdin and the
child's stdout to this process's stdout, line by line and byte-exact, and
appends one JSON object per line to FILE:

    {"t": 0.0123, "label": NAME, "dir": "c2s" | "s2c", "msg": <parsed JSON>}
    ({"raw": "<text>"} instead of "msg" when a line is not JSON)

The child's stderr is inherited. Closing stdin closes the child's stdin; the
relay exits with the child's exit status when the child's stdout closes.

Put it where the proxy will go to prove a relay changes nothing, or on either
side of the proxy to see exactly what crosses it:

    client_legacy.py list-tools -- wiretap.py --log a.jsonl -- SERVER...
    client_legacy.py list-tools -- mcp-policy proxy ... -- wiretap.py --log b.jsonl -- SERVER...
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time


def main() -> int:
    argv = sys.argv[1:]
    if "--" not in argv:
        print("usage: wiretap.py --log FILE [--label NAME] -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    i = argv.index("--")
    p = argparse.ArgumentParser(prog="wiretap.py")
    p.add_argument("--log", required=True)
    p.add_argument("--label", default=None)
    args = p.parse_args(argv[:i])
    command = argv[i + 1 :]
    if not command:
        p.error("missing command after --")

    started = time.monotonic()
    lock = threading.Lock()
    logf = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 - closed at exit

    def record(direction: str, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        entry: dict = {"t": round(time.monotonic() - started, 4), "dir": direction}
        if args.label:
            entry["label"] = args.label
        try:
            entry["msg"] = json.loads(text)
        except ValueError:
            entry["raw"] = text
        with lock:
            logf.write(json.dumps(entry) + "\n")
            logf.flush()

    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert child.stdin is not None and child.stdout is not None

    def on_term(signum: int, _frame: object) -> None:
        child.terminate()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)

    def pump_in() -> None:
        src = sys.stdin.buffer
        try:
            for line in iter(src.readline, b""):
                record("c2s", line)
                child.stdin.write(line)
                child.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                child.stdin.close()
            except OSError:
                pass

    threading.Thread(target=pump_in, daemon=True).start()
    out = sys.stdout.buffer
    try:
        for line in iter(child.stdout.readline, b""):
            record("s2c", line)
            out.write(line)
            out.flush()
    except (BrokenPipeError, OSError):
        pass
    try:
        rc = child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        rc = child.wait()
    logf.close()
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
