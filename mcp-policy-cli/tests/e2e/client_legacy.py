#!/usr/bin/env python3
"""MCP client over the 2025-11-25 handshake: `ClientSession` + `stdio_client`.

    client_legacy.py [OPTIONS] OP [OP_ARGS...] -- SERVER_COMMAND [SERVER_ARGS...]

Opens the server over stdio, sends `initialize` (the SDK offers 2025-11-25)
and `notifications/initialized`, then runs the operations. The client declares
the sampling and elicitation (form + url) capabilities unless --no-sampling /
--no-elicitation; its answers are chosen by --elicit / --sampling-text.
See e2e_common.py and README.md for the options and the JSON output.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anyio  # noqa: E402
from mcp import ClientSession, stdio_client  # noqa: E402
from mcp.client.subscriptions import listen  # noqa: E402
from mcp.types import Implementation  # noqa: E402

import e2e_common as common  # noqa: E402


class LegacyOps(common.Ops):
    level_via_request = True

    def __init__(self, session: ClientSession) -> None:
        self.s = session

    async def list_tools(self) -> Any:
        return await self.s.list_tools()

    async def call_tool(self, name: str, args: dict[str, Any], progress: Any) -> Any:
        return await self.s.call_tool(name, args, progress_callback=progress)

    async def list_resources(self) -> Any:
        return await self.s.list_resources()

    async def read_resource(self, uri: str) -> Any:
        return await self.s.read_resource(uri)

    async def list_templates(self) -> Any:
        return await self.s.list_resource_templates()

    async def subscribe(self, uri: str) -> Any:
        with warnings.catch_warnings():  # deprecated: removed as of 2026-07-28
            warnings.simplefilter("ignore")
            return await self.s.subscribe_resource(uri)

    async def unsubscribe(self, uri: str) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return await self.s.unsubscribe_resource(uri)

    def listen(self, uris: list[str]) -> Any:
        return listen(self.s, resource_subscriptions=uris)

    async def list_prompts(self) -> Any:
        return await self.s.list_prompts()

    async def get_prompt(self, name: str, args: dict[str, str]) -> Any:
        return await self.s.get_prompt(name, args)

    async def complete(self, ref: Any, argument: dict[str, str], context: dict[str, str] | None) -> Any:
        return await self.s.complete(ref, argument, context)

    async def set_level(self, level: str) -> Any:
        return await self.s.set_logging_level(level)  # type: ignore[arg-type]


def main() -> int:
    args, server, steps = common.parse(
        "client_legacy.py", "MCP test client, 2025-11-25 handshake (ClientSession over stdio_client)"
    )

    async def connect(rec: common.Recorder, body) -> None:
        async with stdio_client(common.server_params(server, args)) as (read, write):
            async with ClientSession(
                read,
                write,
                read_timeout_seconds=args.timeout,
                client_info=Implementation(name="mcp-policy-e2e-legacy", version="0"),
                **rec.callbacks(),
            ) as session:
                rec.tap_requests(session)
                init = await session.initialize()
                info = {
                    "era": "legacy",
                    "protocol_version": session.protocol_version,
                    "server_info": common.dump(init.server_info),
                    "capabilities": common.dump(init.capabilities),
                    "wire": rec.step["wire"],
                }
                await body(LegacyOps(session), info)

    return anyio.run(common.run_all, "legacy", args, steps, connect)


if __name__ == "__main__":
    sys.exit(main())
