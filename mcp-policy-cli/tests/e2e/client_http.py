#!/usr/bin/env python3
"""MCP client over streamable HTTP, in either era.

    client_http.py [--mode legacy|2026-07-28] [--token TOKEN] [--input-required auto|raw]
                   [OPTIONS] OP [OP_ARGS...] -- URL

--mode legacy (default): `ClientSession` + `streamable_http_client`, the initialize
    handshake (2025-11-25), as client_legacy.py.
--mode 2026-07-28: `mcp.Client` with no handshake (every request carries its envelope
    in params._meta), as client_new.py; `--input-required` as there.
--token sends `Authorization: Bearer TOKEN` on every HTTP request (also from
    $MCP_TOKEN, which keeps it out of the process list).

The same operations, callbacks and JSON output as the other scripts (e2e_common.py).
"""

from __future__ import annotations

import os
import sys
from contextlib import AsyncExitStack
from typing import Any

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anyio  # noqa: E402
from mcp import Client, ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402
from mcp.types import Implementation  # noqa: E402

import e2e_common as common  # noqa: E402
from client_legacy import LegacyOps  # noqa: E402
from client_new import NewOps  # noqa: E402


def extra(p) -> None:
    p.add_argument("--mode", default="legacy", help="legacy (default) or 2026-07-28")
    p.add_argument("--token", default=os.environ.get("MCP_TOKEN"), help="bearer token")
    p.add_argument("--input-required", choices=["auto", "raw"], default="auto")


def main() -> int:
    args, server, steps = common.parse("client_http.py", "MCP test client over streamable HTTP", extra)
    if len(server) != 1:
        print("client_http.py: expected one URL after --", file=sys.stderr)
        return common.EXIT_USAGE
    url = server[0]
    headers: dict[str, str] = {}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"

    async def connect_legacy(rec: common.Recorder, body) -> None:
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

    async def connect_new(rec: common.Recorder, body) -> None:
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(create_mcp_http_client(headers=headers))

            class TappedClient(Client):
                async def _build_session(self, exit_stack: AsyncExitStack):  # type: ignore[override]
                    session = await super()._build_session(exit_stack)
                    rec.tap_requests(session)
                    return session

            client = TappedClient(
                streamable_http_client(url, http_client=http),
                mode=args.mode,
                read_timeout_seconds=args.timeout,
                client_info=Implementation(name="mcp-policy-e2e-http-new", version="0"),
                cache=None,
                **rec.callbacks(),
            )
            async with client:
                session = client.session
                stateless = session.discover_result is not None
                info = {
                    "era": "stateless" if stateless else "legacy",
                    "transport": "streamable-http",
                    "mode": args.mode,
                    "protocol_version": client.protocol_version,
                    "server_info": common.dump(client.server_info),
                    "capabilities": common.dump(client.server_capabilities),
                    "wire": rec.step["wire"],
                }
                await body(NewOps(client, stateless, args.input_required == "raw"), info)

    connect = connect_legacy if args.mode == "legacy" else connect_new
    return anyio.run(common.run_all, "http", args, steps, connect)


if __name__ == "__main__":
    sys.exit(main())
