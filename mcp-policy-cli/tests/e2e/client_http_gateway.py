#!/usr/bin/env python3
"""MCP client over streamable HTTP: `ClientSession` + `streamable_http_client`.

    client_http_gateway.py [OPTIONS] [--token TOKEN] [--header K=V]... OP [OP_ARGS...] -- URL

The same operations, callbacks and JSON output as client_legacy.py (see
e2e_common.py and README.md), but the "server command line" after `--` is one
URL: an MCP streamable-HTTP endpoint, such as `mcp-policy proxy --listen`.
`--token` sends `Authorization: Bearer TOKEN` on every request (the token may
also come from $MCP_GATEWAY_TOKEN, which keeps it out of the process list).
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anyio  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402
from mcp.types import Implementation  # noqa: E402

import e2e_common as common  # noqa: E402
from client_legacy import LegacyOps  # noqa: E402


def extra(p) -> None:
    p.add_argument("--token", default=os.environ.get("MCP_GATEWAY_TOKEN"), help="bearer token")
    p.add_argument("--header", action="append", default=[], help="extra request header K=V (repeatable)")


def main() -> int:
    args, server, steps = common.parse(
        "client_http_gateway.py", "MCP test client over streamable HTTP (ClientSession)", extra
    )
    if len(server) != 1:
        print("client_http_gateway.py: expected one URL after --", file=sys.stderr)
        return common.EXIT_USAGE
    url = server[0]
    headers: dict[str, str] = {}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    for kv in args.header:
        k, _, v = kv.partition("=")
        headers[k] = v

    async def connect(rec: common.Recorder, body) -> None:
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(
                    read,
                    write,
                    read_timeout_seconds=args.timeout,
                    client_info=Implementation(name="mcp-policy-e2e-http", version="0"),
                    **rec.callbacks(),
                ) as session:
                    rec.tap_requests(session)
                    init = await session.initialize()
                    info: dict[str, Any] = {
                        "era": "legacy",
                        "transport": "streamable-http",
                        "protocol_version": session.protocol_version,
                        "server_info": common.dump(init.server_info),
                        "capabilities": common.dump(init.capabilities),
                        "wire": rec.step["wire"],
                    }
                    await body(LegacyOps(session), info)

    return anyio.run(common.run_all, "http", args, steps, connect)


if __name__ == "__main__":
    sys.exit(main())
