#!/usr/bin/env python3
"""A small MCP server on the official Python SDK (`mcp` 2.3.0) for the e2e tests.

    fixture_server.py            (stdio; both protocol eras)
    fixture_server.py --http PORT [CERT KEY]
                                 (streamable HTTP on 127.0.0.1:PORT/mcp; both
                                 eras: sessions for 2025-11-25, session-less
                                 POSTs for 2026-07-28; with CERT and KEY (PEM
                                 files), HTTPS; prints "listening" on stderr
                                 once it accepts connections)

The registry servers installed by setup.sh cover the 2025-11-25 handshake
well, but none of them asks the client anything on 2026-07-28 (the Node
servers do not speak 2026-07-28 at all; mcp-server-time and mcp-server-git
do, but never elicit or sample). This server uses only the SDK's own
machinery, so its `input_required` rounds are exactly what SDK 2.3 servers
send:

  echo(text)              -> "echo: <text>"
  approve_action(action)  -> elicits {"approve": boolean} (the form the proxy
                             also sends); returns "approved: <action>",
                             "rejected: <action>" (accepted with approve=false),
                             "declined: <action>" or "cancelled: <action>".
                             2025-11-25: a standalone elicitation/create request
                             mid-call. 2026-07-28: an InputRequiredResult, then
                             the client's retry with inputResponses+requestState.
  ask_llm(prompt)         -> samples the client's LLM (sampling/createMessage,
                             same two transports as above); returns its text.
  progress(steps)         -> reports `steps` progress notifications, returns "done".
  log(level, message)     -> sends one notifications/message (2025-11-25: needs
                             logging/setLevel at or below `level`; 2026-07-28: the
                             request must opt in with _meta logLevel).
  fail(message)           -> a tool error (isError true).
  reject(message)         -> a JSON-RPC error answer (code -32000): the tool did
                             not run, so a gateway refunds the call's charges.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
    Sample,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import CreateMessageResult, SamplingMessage, TextContent
from pydantic import BaseModel, Field

server = MCPServer("mcp-policy-e2e-fixture", version="1.0.0")


class Approval(BaseModel):
    approve: bool = Field(description="Approve this action?")


def ask_approval(action: str) -> Elicit[Approval]:
    return Elicit(f"Approve action {action!r}?", Approval)


def ask_model(prompt: str) -> Sample:
    return Sample([SamplingMessage(role="user", content=TextContent(type="text", text=prompt))], max_tokens=50)


@server.tool(description="Echo the text back")
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(description="Ask the user to approve an action (elicitation with one boolean field 'approve')")
def approve_action(
    action: str,
    answer: Annotated[ElicitationResult[Approval], Resolve(ask_approval)],
) -> str:
    if isinstance(answer, AcceptedElicitation):
        return f"{'approved' if answer.data.approve else 'rejected'}: {action}"
    return f"{answer.action}d: {action}" if answer.action == "decline" else f"cancelled: {action}"


@server.tool(description="Ask the client's LLM (sampling/createMessage) and return its text")
def ask_llm(prompt: str, reply: Annotated[CreateMessageResult, Resolve(ask_model)]) -> str:
    content = reply.content
    return f"llm said: {content.text if isinstance(content, TextContent) else content.type}"


@server.tool(description="Report `steps` progress notifications")
async def progress(steps: int, ctx: Context) -> str:
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps, f"step {i}")
        await anyio.sleep(0.05)
    return "done"


@server.tool(description="Send one log notification at `level`")
async def log(level: str, message: str, ctx: Context) -> str:
    await ctx.log(level, message)  # type: ignore[arg-type]
    return f"logged {level}"


@server.tool(description="Always fails with a tool error")
def fail(message: str) -> str:
    raise ToolError(message)


@server.tool(description="Always answered with a JSON-RPC error (code -32000)")
def reject(message: str) -> str:
    raise MCPError(-32000, message)


async def serve_http(port: int, cert: str | None = None, key: str | None = None) -> None:
    import sys

    import uvicorn

    config = uvicorn.Config(
        server.streamable_http_app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    web = uvicorn.Server(config)

    async def announce() -> None:
        while not web.started:
            await anyio.sleep(0.02)
        print("listening", file=sys.stderr, flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        await web.serve()
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    import sys

    if len(sys.argv) in (3, 5) and sys.argv[1] == "--http":
        anyio.run(serve_http, int(sys.argv[2]), *sys.argv[3:])
    else:
        anyio.run(server.run_stdio_async)
