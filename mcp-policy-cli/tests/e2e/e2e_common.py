"""Shared plumbing for the end-to-end MCP client scripts.

`client_legacy.py` and `client_new.py` differ only in how they open the
connection; the command line, the callbacks (elicitation, sampling, logging,
progress), the operations and the JSON output live here.

Command line (both scripts):

    client_X.py [OPTIONS] OP [OP_ARGS...] -- SERVER_COMMAND [SERVER_ARGS...]

Everything after the first `--` is the server command line, spawned over
stdio.  Put `mcp-policy proxy ... -- SERVER...` there to test through the
proxy.

Output: JSON Lines on stdout, one object per line:
    {"kind": "connect", ...}        once, after the handshake
    {"kind": "step", ...}           once per operation
    {"kind": "summary", ...}        last line, always (also on failure)
Diagnostics go to stderr. Exit status: 0 all expectations met, 1 an
expectation failed, 2 usage error, 3 connection failure / overall timeout.
"""

from __future__ import annotations

import argparse
import builtins
import copy
import json
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

EXIT_OK = 0
EXIT_EXPECTATION = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3

OPS_HELP = """\
operations (OP):
  info                        connect only (prints the negotiated protocol)
  list-tools                  prints tool names (full listing with --full)
  call NAME [JSON_ARGS]       tools/call; JSON_ARGS is an object, default {}
  list-resources              resources/list (uris; full with --full)
  list-templates              resources/templates/list (uriTemplates; full with --full)
  read-resource URI           resources/read
  subscribe URI               resources/subscribe (2025-11-25 only; removed in
                              2026-07-28, whose successor is subscriptions/listen)
  unsubscribe URI             resources/unsubscribe (2025-11-25 only)
  listen URI [SECONDS]        client_new.py on 2026-07-28 only: subscriptions/listen
                              with resourceSubscriptions [URI]; prints the honored
                              filter and the events received within SECONDS (default 1)
  list-prompts                prompts/list (names; full with --full)
  get-prompt NAME [JSON_ARGS] prompts/get; JSON_ARGS maps names to strings
  complete REF ARG VALUE [JSON_CONTEXT]
                              completion/complete for argument ARG, partial VALUE;
                              REF is prompt:NAME or resource:URI_TEMPLATE, e.g.
                                complete prompt:greet name gr
                                complete resource:fixture://docs/{name} name re
                              JSON_CONTEXT: already chosen arguments {"k": "v"}
  (op names may be spelled with _ instead of -: list_templates = list-templates)
  steps JSON|@FILE            several operations in one session; a JSON list
                              of objects {"op": ..., ...} (see README.md)
"""


def dump(value: Any) -> Any:
    """JSON-ready form of an SDK model (wire aliases, no None fields)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True, mode="json", exclude_none=True)
    if isinstance(value, list):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return value


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def log(msg: str) -> None:
    sys.stderr.write(f"[e2e-client] {msg}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------
# command line


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" not in argv:
        return argv, []
    i = argv.index("--")
    return argv[:i], argv[i + 1 :]


def load_json_arg(text: str) -> Any:
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            return json.load(f)
    return json.loads(text)


def build_parser(prog: str, description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None):
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=OPS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("op", help="operation, see below")
    p.add_argument("op_args", nargs="*", help="operation arguments")
    p.add_argument("--timeout", type=float, default=15.0, help="per-request timeout, seconds (default 15)")
    p.add_argument(
        "--total-timeout", type=float, default=25.0,
        help="bound on the whole run, seconds (default 25; the server shutdown may add ~2 s)"
    )
    p.add_argument(
        "--elicit",
        choices=["accept", "decline", "cancel", "sleep", "error"],
        default="accept",
        help="answer to elicitation/create: accept (with --elicit-content), decline, cancel, "
        "sleep (wait --elicit-sleep s, then answer --elicit-after-sleep), error (JSON-RPC error)",
    )
    p.add_argument(
        "--elicit-content",
        default='{"approve": true}',
        help='content sent with an accept (JSON object, default {"approve": true})',
    )
    p.add_argument("--elicit-sleep", type=float, default=10.0, help="seconds to sleep with --elicit sleep")
    p.add_argument(
        "--elicit-after-sleep",
        choices=["accept", "decline", "cancel"],
        default="accept",
        help="answer given after the sleep (default accept)",
    )
    p.add_argument(
        "--sampling-text",
        default="e2e fixed sampling answer",
        help="text of the fixed assistant message returned to sampling/createMessage",
    )
    p.add_argument("--no-sampling", action="store_true", help="do not declare/answer sampling")
    p.add_argument("--no-elicitation", action="store_true", help="do not declare/answer elicitation")
    p.add_argument("--no-progress", action="store_true", help="do not attach a progress token to tools/call")
    p.add_argument("--log-level", default=None, help="logging level to request (debug, info, ...)")
    p.add_argument(
        "--wait", type=float, default=0.0, help="after the operations, keep the session open this long "
        "collecting notifications (seconds)"
    )
    p.add_argument("--full", action="store_true", help="print full listings, not just names")
    p.add_argument("--clean-env", action="store_true", help="spawn the server with the SDK's minimal environment "
                   "instead of this process's whole environment")
    p.add_argument("--cwd", default=None, help="working directory of the server process")
    # expectations: apply to the single operation (or, with `steps`, to the last step
    # unless the step carries its own "expect" object)
    g = p.add_argument_group("expectations (exit 1 when one fails)")
    g.add_argument("--expect", choices=["ok", "is-error", "error", "input-required", "timeout", "any"],
                   default=None,
                   help="ok: a result that is not isError; is-error: a tools/call result with isError true; "
                   "error: a JSON-RPC error response; input-required: an InputRequiredResult (client_new.py "
                   "--input-required raw); timeout: no answer within --timeout; "
                   "any: anything but a timeout/exception")
    g.add_argument("--expect-code", type=int, default=None, help="JSON-RPC error code expected")
    g.add_argument("--expect-text", action="append", default=[], help="substring of the step's result/error JSON")
    g.add_argument("--expect-no-text", action="append", default=[], help="substring that must not appear")
    g.add_argument("--expect-tool", action="append", default=[], help="list-tools must include this name")
    g.add_argument("--expect-no-tool", action="append", default=[], help="list-tools must not include this name")
    g.add_argument("--expect-progress-min", type=int, default=None, help="at least N progress notifications")
    g.add_argument("--expect-sampling", type=int, default=None, help="exactly N sampling requests in the step")
    g.add_argument("--expect-elicitations", type=int, default=None, help="exactly N elicitations in the step")
    g.add_argument("--expect-logs-min", type=int, default=None, help="at least N log notifications in the session")
    g.add_argument("--expect-protocol", default=None, help="negotiated protocol version expected")
    if extra is not None:
        extra(p)
    return p


def parse(prog: str, description: str, extra=None) -> tuple[argparse.Namespace, list[str], list[dict[str, Any]]]:
    own, server = split_argv(sys.argv[1:])
    parser = build_parser(prog, description, extra)
    args = parser.parse_args(own)
    if not server:
        parser.error("missing server command line after --")
    try:
        steps = steps_from_args(args)
        args.elicit_content_obj = json.loads(args.elicit_content)
    except (ValueError, OSError) as e:
        parser.error(str(e))
    return args, server, steps


def steps_from_args(args: argparse.Namespace) -> list[dict[str, Any]]:
    op, rest = args.op.replace("_", "-"), args.op_args

    def need(n_min: int, n_max: int) -> None:
        if not (n_min <= len(rest) <= n_max):
            raise ValueError(f"{op}: expected {n_min}..{n_max} arguments, got {len(rest)}")

    if op == "steps":
        need(1, 1)
        steps = load_json_arg(rest[0])
        if not isinstance(steps, list) or not all(isinstance(s, dict) and "op" in s for s in steps):
            raise ValueError("steps: expected a JSON list of objects with an 'op' key")
    elif op in ("info", "list-tools", "list-resources", "list-templates", "list-prompts"):
        need(0, 0)
        steps = [] if op == "info" else [{"op": op}]
    elif op == "call":
        need(1, 2)
        steps = [{"op": "call", "name": rest[0], "args": json.loads(rest[1]) if len(rest) > 1 else {}}]
    elif op in ("read-resource", "subscribe", "unsubscribe"):
        need(1, 1)
        steps = [{"op": op, "uri": rest[0]}]
    elif op == "listen":
        need(1, 2)
        steps = [{"op": op, "uri": rest[0], "seconds": float(rest[1]) if len(rest) > 1 else 1.0}]
    elif op == "complete":
        need(3, 4)
        parse_ref(rest[0])  # fail early on a bad REF
        steps = [{"op": op, "ref": rest[0], "argument": rest[1], "value": rest[2]}]
        if len(rest) > 3:
            steps[0]["context"] = json.loads(rest[3])
    elif op == "get-prompt":
        need(1, 2)
        steps = [{"op": "get-prompt", "name": rest[0], "args": json.loads(rest[1]) if len(rest) > 1 else {}}]
    else:
        raise ValueError(f"unknown operation {op!r}")
    cli_expect = {
        "status": args.expect,
        "code": args.expect_code,
        "text": args.expect_text,
        "no_text": args.expect_no_text,
        "tools": args.expect_tool,
        "no_tools": args.expect_no_tool,
        "progress_min": args.expect_progress_min,
        "sampling": args.expect_sampling,
        "elicitations": args.expect_elicitations,
    }
    cli_expect = {k: v for k, v in cli_expect.items() if v not in (None, [])}
    if cli_expect and steps and "expect" not in steps[-1]:
        steps[-1]["expect"] = cli_expect
    return steps


def parse_ref(ref: str) -> Any:
    """`prompt:NAME` -> PromptReference, `resource:URI_TEMPLATE` -> ResourceTemplateReference."""
    kind, sep, rest = ref.partition(":")
    if sep and rest and kind == "prompt":
        return types.PromptReference(name=rest)
    if sep and rest and kind == "resource":
        return types.ResourceTemplateReference(uri=rest)
    raise ValueError(f"complete: REF must be prompt:NAME or resource:URI_TEMPLATE, got {ref!r}")


# --------------------------------------------------------------------------
# callbacks and event recording


@dataclass
class Recorder:
    args: argparse.Namespace
    step: dict[str, list[Any]] = field(default_factory=dict)
    all_logs: list[Any] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.step = {
            "progress": [],
            "sampling": [],
            "elicitation": [],
            "logging": [],
            "notifications": [],
            "wire": [],
        }

    def tap_requests(self, session: Any) -> None:
        """Record every client->server request of `session` as sent and answered on the wire.

        Wraps the session's dispatcher (a private attribute of the pinned SDK):
        `params` is exactly what was sent (after the SDK stamped its `_meta`),
        `result` exactly what came back, before the SDK's model parsing adds
        defaults such as `resultType`.
        """
        dispatcher = session._dispatcher  # noqa: SLF001 - pinned SDK version
        original = dispatcher.send_raw_request

        async def send_raw_request(method: str, params: Any, opts: Any = None) -> Any:
            item: dict[str, Any] = {"method": method, "params": copy.deepcopy(params)}
            self.add("wire", item)
            try:
                raw = await original(method, params, opts)
            except MCPError as e:
                item["error"] = error_obj(e)
                raise
            item["result"] = copy.deepcopy(raw) if self.args.full else summarize(method, raw)
            return raw

        dispatcher.send_raw_request = send_raw_request

    def add(self, kind: str, item: Any) -> None:
        self.step[kind].append(item)
        self.totals[kind] = self.totals.get(kind, 0) + 1

    # ---- the SDK callbacks -------------------------------------------------

    async def elicitation_callback(self, context: Any, params: Any) -> Any:
        a = self.args
        # Recorded on arrival; "answered" is filled in once the answer is sent
        # (absent if the run ended while the callback was still sleeping).
        rec = {"request_id": str(context.request_id), "params": dump(params)}
        self.add("elicitation", rec)
        started = time.monotonic()
        action = a.elicit
        if action == "sleep":
            log(f"elicitation: sleeping {a.elicit_sleep}s before answering {a.elicit_after_sleep}")
            await anyio.sleep(a.elicit_sleep)
            action = a.elicit_after_sleep
        rec["answered"] = action
        rec["answer_after_ms"] = int((time.monotonic() - started) * 1000)
        if action == "accept":
            return types.ElicitResult(action="accept", content=a.elicit_content_obj)
        if action in ("decline", "cancel"):
            return types.ElicitResult(action=action)
        return types.ErrorData(code=types.INVALID_REQUEST, message="e2e client refuses elicitation")

    async def sampling_callback(self, context: Any, params: Any) -> Any:
        self.add("sampling", {"request_id": str(context.request_id), "params": dump(params)})
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=self.args.sampling_text),
            model="e2e-fixed-model",
            stop_reason="endTurn",
        )

    async def logging_callback(self, params: Any) -> None:
        item = dump(params)
        self.all_logs.append(item)
        self.add("logging", item)

    async def progress_callback(self, progress: float, total: float | None, message: str | None) -> None:
        self.add("progress", {"progress": progress, "total": total, "message": message})

    async def message_handler(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.add("notifications", {"exception": repr(message)})
            return
        root = getattr(message, "root", message)
        method = getattr(root, "method", type(root).__name__)
        if method in ("notifications/message", "notifications/progress"):
            return  # recorded by their own callbacks
        self.add("notifications", {"method": method, "params": dump(getattr(root, "params", None))})

    def callbacks(self) -> dict[str, Any]:
        cb: dict[str, Any] = {
            "logging_callback": self.logging_callback,
            "message_handler": self.message_handler,
        }
        if not self.args.no_sampling:
            cb["sampling_callback"] = self.sampling_callback
        if not self.args.no_elicitation:
            cb["elicitation_callback"] = self.elicitation_callback
        return cb


def summarize(method: str, raw: Any) -> Any:
    """Shorten listings in the `wire` record (unless --full): names instead of whole entries,
    and no `instructions` text in the initialize result."""
    if not isinstance(raw, dict):
        return copy.deepcopy(raw)
    out = copy.deepcopy(raw)
    for key, name_key in (("tools", "name"), ("prompts", "name"), ("resources", "uri"), ("resourceTemplates", "uriTemplate")):
        if method.endswith("/list") and isinstance(out.get(key), list):
            out[key] = [x.get(name_key) if isinstance(x, dict) else x for x in out[key]]
            out["_summarized"] = True
    if method == "initialize" and isinstance(out.get("instructions"), str):
        out["instructions"] = f"<{len(out['instructions'])} chars>"
        out["_summarized"] = True
    return out


# --------------------------------------------------------------------------
# running operations


def error_obj(e: BaseException) -> dict[str, Any]:
    if isinstance(e, MCPError):
        return {"code": e.code, "message": e.message, "data": e.data}
    return {"exception": type(e).__name__, "message": str(e)}


_GROUP = getattr(builtins, "BaseExceptionGroup", None)  # Python >= 3.11; anyio backports it on 3.10


def unwrap_group(e: BaseException) -> BaseException:
    group = _GROUP or type(e)
    while hasattr(e, "exceptions") and isinstance(e, group) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return e


class Ops:
    """What a connection must provide; implemented by each client script."""

    async def list_tools(self) -> Any: ...
    async def call_tool(self, name: str, args: dict[str, Any], progress: Any) -> Any: ...
    async def list_resources(self) -> Any: ...
    async def list_templates(self) -> Any: ...
    async def read_resource(self, uri: str) -> Any: ...
    async def subscribe(self, uri: str) -> Any: ...
    async def unsubscribe(self, uri: str) -> Any: ...
    def listen(self, uris: list[str]) -> Any: ...  # async context manager -> Subscription
    async def list_prompts(self) -> Any: ...
    async def get_prompt(self, name: str, args: dict[str, str]) -> Any: ...
    async def complete(self, ref: Any, argument: dict[str, str], context: dict[str, str] | None) -> Any: ...
    async def set_level(self, level: str) -> Any: ...


async def run_step(index: int, step: dict[str, Any], ops: Ops, rec: Recorder, args: argparse.Namespace) -> dict[str, Any]:
    op = step["op"].replace("_", "-")
    out: dict[str, Any] = {"kind": "step", "index": index, "op": op}
    for key in ("name", "uri", "args", "seconds", "level", "ref", "argument", "value", "context"):
        if key in step:
            out[key] = step[key]
    rec.reset()
    started = time.monotonic()
    timeout = float(step.get("timeout", args.timeout))
    try:
        with anyio.fail_after(timeout + 1.0):  # the SDK's own read timeout fires first
            if op == "list-tools":
                r = await ops.list_tools()
                out["tool_names"] = [t.name for t in r.tools]
                out["list_meta"] = list_meta(r, rec)
                if args.full or step.get("full"):
                    out["result"] = dump(r)
            elif op == "call":
                progress = None if (args.no_progress or step.get("no_progress")) else rec.progress_callback
                r = await ops.call_tool(step["name"], step.get("args") or {}, progress)
                out["result"] = dump(r)
            elif op == "list-resources":
                r = await ops.list_resources()
                out["resource_uris"] = [str(x.uri) for x in r.resources]
                out["list_meta"] = list_meta(r, rec)
                if args.full or step.get("full"):
                    out["result"] = dump(r)
            elif op == "list-templates":
                r = await ops.list_templates()
                out["template_uris"] = [x.uri_template for x in r.resource_templates]
                out["list_meta"] = list_meta(r, rec)
                if args.full or step.get("full"):
                    out["result"] = dump(r)
            elif op == "read-resource":
                out["result"] = dump(await ops.read_resource(step["uri"]))
            elif op == "subscribe":
                out["result"] = dump(await ops.subscribe(step["uri"]))
            elif op == "unsubscribe":
                out["result"] = dump(await ops.unsubscribe(step["uri"]))
            elif op == "listen":
                out["result"] = await run_listen(ops, step, rec)
            elif op == "list-prompts":
                r = await ops.list_prompts()
                out["prompt_names"] = [x.name for x in r.prompts]
                out["list_meta"] = list_meta(r, rec)
                if args.full or step.get("full"):
                    out["result"] = dump(r)
            elif op == "get-prompt":
                out["result"] = dump(await ops.get_prompt(step["name"], step.get("args") or {}))
            elif op == "complete":
                r = await ops.complete(
                    parse_ref(step["ref"]), {"name": step["argument"], "value": step["value"]}, step.get("context")
                )
                out["completion_values"] = list(r.completion.values)
                out["result"] = dump(r)
            elif op == "set-level":
                out["result"] = dump(await ops.set_level(step["level"]))
            elif op == "sleep":
                await anyio.sleep(float(step["seconds"]))
            else:
                raise ValueError(f"unknown step op {op!r}")
        if op == "call" and out["result"].get("resultType") == "input_required":
            out["status"] = "input-required"  # client_new.py --input-required raw
        elif op == "call" and out["result"].get("isError"):
            out["status"] = "is-error"
        else:
            out["status"] = "ok"
    except TimeoutError as e:
        out["status"] = "timeout"
        out["error"] = {"exception": "TimeoutError", "message": f"no answer within {timeout}s"}
    except MCPError as e:
        out["status"] = "timeout" if e.code == types.REQUEST_TIMEOUT else "error"
        out["error"] = error_obj(e)
    except Exception as e:  # noqa: BLE001 - report everything as data
        e2 = unwrap_group(e)
        if isinstance(e2, MCPError):
            out["status"] = "timeout" if e2.code == types.REQUEST_TIMEOUT else "error"
        else:
            out["status"] = "exception"
            log("".join(traceback.format_exception(e2)))
        out["error"] = error_obj(e2)
    out["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    out["events"] = rec.step
    out["failures"] = check(step.get("expect") or {}, out)
    return out


async def run_listen(ops: Ops, step: dict[str, Any], rec: Recorder) -> dict[str, Any]:
    """subscriptions/listen for [uri]: the honored filter and the events within `seconds`.

    A step may carry "call": {"name": ..., "args": ...}, a tools/call made once the
    stream is acknowledged (e.g. the fixture's `touch`), whose result is printed too.
    """
    import dataclasses

    out: dict[str, Any] = {"events": []}
    async with ops.listen([step["uri"]]) as sub:
        out["subscription_id"] = sub.subscription_id
        out["honored"] = dump(sub.honored)

        async def collect() -> None:
            async for ev in sub:
                out["events"].append({"event": type(ev).__name__, **dataclasses.asdict(ev)})

        async with anyio.create_task_group() as tg:
            tg.start_soon(collect)
            if step.get("call"):
                c = step["call"]
                out["call_result"] = dump(await ops.call_tool(c["name"], c.get("args") or {}, None))
            await anyio.sleep(float(step.get("seconds", 1.0)))
            tg.cancel_scope.cancel()
    return out


def list_meta(r: Any, rec: Recorder) -> dict[str, Any]:
    """The caching/metadata fields of a */list result.

    The SDK parses every list result into a `CacheableResult` model: `ttl_ms`
    (wire `ttlMs`) and `cache_scope` (wire `cacheScope`) are plain attributes,
    defaulting to 0 / "private" when the server sent none (2025-11-25 servers
    never do); `meta` is the result's `_meta`. `on_wire` names the ones the
    server really sent (from the last request recorded on the wire).
    """
    raw = next((w.get("result") for w in reversed(rec.step["wire"]) if "result" in w), None)
    on_wire = [k for k in ("ttlMs", "cacheScope", "_meta", "nextCursor") if isinstance(raw, dict) and k in raw]
    return {
        "ttlMs": getattr(r, "ttl_ms", None),
        "cacheScope": getattr(r, "cache_scope", None),
        "_meta": dump(getattr(r, "meta", None)),
        "nextCursor": getattr(r, "next_cursor", None),
        "on_wire": on_wire,
    }


def check(expect: dict[str, Any], out: dict[str, Any]) -> list[str]:
    f: list[str] = []
    status = out.get("status")
    want = expect.get("status")
    if want == "any":
        if status in ("timeout", "exception"):
            f.append(f"status {status}, expected any answer")
    elif want is not None and status != want:
        f.append(f"status {status}, expected {want}")
    if "code" in expect and (out.get("error") or {}).get("code") != expect["code"]:
        f.append(f"error code {(out.get('error') or {}).get('code')}, expected {expect['code']}")
    blob = json.dumps({k: out.get(k) for k in ("result", "error", "tool_names", "resource_uris", "template_uris",
                                                "prompt_names", "completion_values", "list_meta")})
    for s in _as_list(expect.get("text")):
        if s not in blob:
            f.append(f"text {s!r} not found")
    for s in _as_list(expect.get("no_text")):
        if s in blob:
            f.append(f"text {s!r} present")
    names = out.get("tool_names") or []
    for t in _as_list(expect.get("tools")):
        if t not in names:
            f.append(f"tool {t!r} not listed")
    for t in _as_list(expect.get("no_tools")):
        if t in names:
            f.append(f"tool {t!r} listed")
    ev = out["events"]
    if "progress_min" in expect and len(ev["progress"]) < expect["progress_min"]:
        f.append(f"{len(ev['progress'])} progress notifications, expected >= {expect['progress_min']}")
    if "sampling" in expect and len(ev["sampling"]) != expect["sampling"]:
        f.append(f"{len(ev['sampling'])} sampling requests, expected {expect['sampling']}")
    if "elicitations" in expect and len(ev["elicitation"]) != expect["elicitations"]:
        f.append(f"{len(ev['elicitation'])} elicitations, expected {expect['elicitations']}")
    for m in _as_list(expect.get("notifications")):
        if not any(n.get("method") == m for n in ev["notifications"]):
            f.append(f"no {m} notification during the step")
    return f


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


ConnectFn = Callable[[Recorder, Callable[[Ops, dict[str, Any]], Awaitable[None]]], Awaitable[None]]


async def run_all(client: str, args: argparse.Namespace, steps: list[dict[str, Any]], connect: ConnectFn) -> int:
    """Connect via `connect`, run the steps, print the JSON lines, return the exit status."""
    rec = Recorder(args)
    summary: dict[str, Any] = {"kind": "summary", "client": client, "ok": False, "failures": []}
    failures: list[str] = summary["failures"]
    status = EXIT_CONNECT
    started = time.monotonic()

    async def body(ops: Ops, info: dict[str, Any]) -> None:
        nonlocal status
        emit({"kind": "connect", "client": client, **info})
        summary.update({k: info[k] for k in ("protocol_version", "era") if k in info})
        if args.expect_protocol and info.get("protocol_version") != args.expect_protocol:
            failures.append(f"protocol {info.get('protocol_version')}, expected {args.expect_protocol}")
        if args.log_level and getattr(ops, "level_via_request", True):
            steps.insert(0, {"op": "set-level", "level": args.log_level})
        for i, step in enumerate(steps):
            out = await run_step(i, step, ops, rec, args)
            emit(out)
            failures.extend(f"step {i} ({step['op']}): {x}" for x in out["failures"])
        if args.wait > 0:
            rec.reset()
            await anyio.sleep(args.wait)
            emit({"kind": "wait", "seconds": args.wait, "events": rec.step})
        status = EXIT_OK

    try:
        with anyio.fail_after(args.total_timeout):
            await connect(rec, body)
    except TimeoutError:
        failures.append(f"overall timeout ({args.total_timeout}s)")
        status = EXIT_CONNECT
    except Exception as e:  # noqa: BLE001
        e2 = unwrap_group(e)
        # A failure before `body` ran is a connection failure; after, the
        # session teardown may still raise (server gone): keep the verdict.
        if status != EXIT_OK:
            failures.append(f"connection failed: {type(e2).__name__}: {e2}")
            summary["error"] = error_obj(e2)
            log("".join(traceback.format_exception(e2)))
            status = EXIT_CONNECT
        else:
            log(f"ignored error at teardown: {type(e2).__name__}: {e2}")
    if args.expect_logs_min is not None and len(rec.all_logs) < args.expect_logs_min:
        failures.append(f"{len(rec.all_logs)} log notifications, expected >= {args.expect_logs_min}")
    if status == EXIT_OK and failures:
        status = EXIT_EXPECTATION
    summary["ok"] = status == EXIT_OK
    summary["exit"] = status
    summary["event_totals"] = rec.totals
    summary["logging"] = rec.all_logs
    summary["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    emit(summary)
    return status


def server_params(server: list[str], args: argparse.Namespace):
    from mcp.client.stdio import StdioServerParameters

    env = None if args.clean_env else dict(os.environ)
    return StdioServerParameters(command=server[0], args=server[1:], env=env, cwd=args.cwd)
