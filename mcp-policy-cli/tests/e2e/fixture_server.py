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
  wipe_cache()            -> "wipe_cache: done"; annotations destructiveHint=true,
                             readOnlyHint=false.
  peek()                  -> "peek: done"; annotations readOnlyHint=true.
  plain_tool()            -> "plain_tool: done"; no annotations at all.
  touch(uri)              -> announces notifications/resources/updated for `uri`:
                             2025-11-25 on the session (whether or not subscribed),
                             2026-07-28 on subscriptions/listen streams that asked
                             for `uri`; returns "touched: <uri>".

Prompts (prompts/list, prompts/get):
  greet(name)             -> one user message "Say hello to <name>." (`name` required)
  secret_plan(topic?)     -> one user message "The secret plan about <topic>."
                             (`topic` optional, default "everything")

Resources (resources/list, resources/read; resources/templates/list):
  fixture://docs/readme   -> text "fixture readme" (text/plain)
  fixture://secrets/key   -> text "fixture secret key: s3cr3t" (text/plain)
  fixture://docs/{name}   template -> text "fixture doc: <name>" (readme is the
                             static resource above, which wins)

Completion (completion/complete):
  ref/prompt greet, argument name      -> alice, bob, carol, grace, greg
  ref/resource fixture://docs/{name}, argument name -> readme, guide, faq
  each filtered by prefix (the partial value); anything else -> no values.

Subscriptions: 2025-11-25 resources/subscribe and resources/unsubscribe are
served (capability resources.subscribe true; subscribing answers {} and then
sends one notifications/resources/updated for that URI, just before the answer; unsubscribing answers
{}). At 2026-07-28 those two methods do not exist; the SDK serves their
successor `subscriptions/listen` (params {"notifications": {"resourceSubscriptions":
[URI...], "toolsListChanged": ...}}) instead.
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
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from mcp.types import (
    Completion,
    CreateMessageResult,
    EmptyResult,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    SubscribeRequestParams,
    TextContent,
    ToolAnnotations,
    UnsubscribeRequestParams,
)
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


@server.tool(
    description="Wipe the cache (destructive)",
    annotations=ToolAnnotations(destructive_hint=True, read_only_hint=False),
)
def wipe_cache() -> str:
    return "wipe_cache: done"


@server.tool(description="Peek at the state (read-only)", annotations=ToolAnnotations(read_only_hint=True))
def peek() -> str:
    return "peek: done"


@server.tool(description="A tool without annotations")
def plain_tool() -> str:
    return "plain_tool: done"


@server.tool(description="Announce notifications/resources/updated for `uri`")
async def touch(uri: str, ctx: Context) -> str:
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        await ctx.notify_resource_updated(uri)  # subscriptions/listen streams only
    else:
        await ctx.session.send_resource_updated(uri)
    return f"touched: {uri}"


# ---- prompts -------------------------------------------------------------------


@server.prompt(description="Greet someone")
def greet(name: str) -> str:
    return f"Say hello to {name}."


@server.prompt(description="The secret plan")
def secret_plan(topic: str = "everything") -> str:
    return f"The secret plan about {topic}."


# ---- resources -----------------------------------------------------------------


@server.resource("fixture://docs/readme", name="readme", mime_type="text/plain", description="The readme")
def docs_readme() -> str:
    return "fixture readme"


@server.resource("fixture://secrets/key", name="secret-key", mime_type="text/plain", description="A secret key")
def secrets_key() -> str:
    return "fixture secret key: s3cr3t"


@server.resource("fixture://docs/{name}", name="doc", mime_type="text/plain", description="Any document by name")
def docs_any(name: str) -> str:
    return f"fixture doc: {name}"


COMPLETIONS = {
    ("ref/prompt", "greet", "name"): ["alice", "bob", "carol", "grace", "greg"],
    ("ref/resource", "fixture://docs/{name}", "name"): ["readme", "guide", "faq"],
}


@server.completion()
async def complete(ref, argument, context) -> Completion:
    if isinstance(ref, PromptReference):
        key = ("ref/prompt", ref.name, argument.name)
    elif isinstance(ref, ResourceTemplateReference):
        key = ("ref/resource", ref.uri, argument.name)
    else:
        key = None
    values = [v for v in COMPLETIONS.get(key, []) if v.startswith(argument.value)]
    return Completion(values=values, total=len(values), has_more=False)


# ---- 2025-11-25 resources/subscribe, resources/unsubscribe ----------------------
# MCPServer has no decorator for them; the low-level server takes the handlers
# (and then declares resources.subscribe on 2025-11-25).

SUBSCRIBED: set[str] = set()


async def on_subscribe(ctx, params: SubscribeRequestParams) -> EmptyResult:
    SUBSCRIBED.add(str(params.uri))
    await ctx.session.send_resource_updated(str(params.uri))  # arrives just before the answer
    return EmptyResult()


async def on_unsubscribe(ctx, params: UnsubscribeRequestParams) -> EmptyResult:
    SUBSCRIBED.discard(str(params.uri))
    return EmptyResult()


server._lowlevel_server.add_request_handler("resources/subscribe", SubscribeRequestParams, on_subscribe)  # noqa: SLF001
server._lowlevel_server.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, on_unsubscribe)  # noqa: SLF001


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
