#!/usr/bin/env python3
"""MCP client on the SDK's high-level `mcp.Client` (protocol 2026-07-28 capable).

    client_new.py [--mode 2026-07-28|auto|legacy] [--input-required auto|raw]
                  [OPTIONS] OP [OP_ARGS...] -- SERVER_COMMAND [SERVER_ARGS...]
    client_new.py [...] [--token TOKEN] OP [OP_ARGS...] -- http://HOST:PORT/PATH

A single http:// or https:// URL after `--` is a streamable-HTTP server (such as
`mcp-policy proxy --listen`); `--token` (or $MCP_GATEWAY_TOKEN) then sends
`Authorization: Bearer TOKEN` on every request.

--mode 2026-07-28 (default): no handshake at all; every request carries the
    per-request envelope in params._meta (io.modelcontextprotocol/protocolVersion,
    .../clientInfo, .../clientCapabilities).
--mode auto: sends server/discover first; falls back to initialize (2025-11-25)
    when the server does not answer it with a 2026-07-28 DiscoverResult.
--mode legacy: the initialize handshake, as client_legacy.py.

--input-required auto (default): tools/call, prompts/get and resources/read go
    through the SDK's own driver: an InputRequiredResult's inputRequests are
    answered by the callbacks (--elicit, --sampling-text) and the request is
    resent with inputResponses + requestState, up to 10 rounds. Every round is
    visible in the step's events.wire.
--input-required raw: tools/call returns the first answer as is (an
    InputRequiredResult is printed, not answered); status "input-required".

See e2e_common.py and README.md for the other options and the JSON output.
"""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import AsyncExitStack
from typing import Any

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anyio  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.types import Implementation  # noqa: E402

import e2e_common as common  # noqa: E402


def extra_args(p) -> None:
    p.add_argument("--mode", default="2026-07-28", help="2026-07-28 (default), auto or legacy")
    p.add_argument("--input-required", choices=["auto", "raw"], default="auto")
    p.add_argument("--token", default=os.environ.get("MCP_GATEWAY_TOKEN"), help="bearer token (HTTP)")


def target(server: list[str], args):
    """A stdio server's parameters, or a streamable-HTTP transport for one URL."""
    if len(server) == 1 and server[0].startswith(("http://", "https://")):
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        return streamable_http_client(server[0], http_client=create_mcp_http_client(headers=headers))
    return common.server_params(server, args)


class NewOps(common.Ops):
    def __init__(self, client: Client, stateless: bool, raw_input_required: bool) -> None:
        self.c = client
        self.level_via_request = not stateless  # stateless: Client(log_level=...) stamps each request
        self.raw = raw_input_required

    async def list_tools(self) -> Any:
        return await self.c.list_tools()

    async def call_tool(self, name: str, args: dict[str, Any], progress: Any) -> Any:
        if self.raw:
            return await self.c.session.call_tool(name, args, progress_callback=progress, allow_input_required=True)
        return await self.c.call_tool(name, args, progress_callback=progress)

    async def list_resources(self) -> Any:
        return await self.c.list_resources()

    async def read_resource(self, uri: str) -> Any:
        return await self.c.read_resource(uri)

    async def list_templates(self) -> Any:
        return await self.c.list_resource_templates()

    async def subscribe(self, uri: str) -> Any:
        with warnings.catch_warnings():  # deprecated: removed as of 2026-07-28
            warnings.simplefilter("ignore")
            return await self.c.subscribe_resource(uri)

    async def unsubscribe(self, uri: str) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return await self.c.unsubscribe_resource(uri)

    def listen(self, uris: list[str]) -> Any:
        return self.c.listen(resource_subscriptions=uris)

    async def list_prompts(self) -> Any:
        return await self.c.list_prompts()

    async def get_prompt(self, name: str, args: dict[str, str]) -> Any:
        return await self.c.get_prompt(name, args)

    async def complete(self, ref: Any, argument: dict[str, str], context: dict[str, str] | None) -> Any:
        return await self.c.complete(ref, argument, context)

    async def set_level(self, level: str) -> Any:
        return await self.c.session.set_logging_level(level)  # type: ignore[arg-type]


def main() -> int:
    args, server, steps = common.parse(
        "client_new.py", "MCP test client on mcp.Client (2026-07-28 / auto / legacy)", extra_args
    )

    async def connect(rec: common.Recorder, body) -> None:
        class TappedClient(Client):
            async def _build_session(self, exit_stack: AsyncExitStack):  # type: ignore[override]
                session = await super()._build_session(exit_stack)
                rec.tap_requests(session)
                return session

        client = TappedClient(
            target(server, args),
            mode=args.mode,
            read_timeout_seconds=args.timeout,
            client_info=Implementation(name="mcp-policy-e2e-new", version="0"),
            log_level=args.log_level,
            cache=None,  # every call reaches the server (the proxy)
            **rec.callbacks(),
        )
        async with client:
            session = client.session
            stateless = session.discover_result is not None
            info = {
                "era": "stateless" if stateless else "legacy",
                "mode": args.mode,
                "protocol_version": client.protocol_version,
                "server_info": common.dump(client.server_info),
                "capabilities": common.dump(client.server_capabilities),
                "wire": rec.step["wire"],
            }
            await body(NewOps(client, stateless, args.input_required == "raw"), info)

    status = anyio.run(common.run_all, "new", args, steps, connect)
    return status


if __name__ == "__main__":
    sys.exit(main())
