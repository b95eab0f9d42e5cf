#!/usr/bin/env python3
"""Fire one synthetic CAO session's plugin events at an ingest URL, the way CAO would.

Usage: feed_events.py [INGEST_URL] [--token TOKEN] [--session NAME] [--timeout SECONDS]

Uses the real CAO plugin API when ``cli_agent_orchestrator`` is importable, else the test
stand-in in ../tests/standin. Hooks are found by their ``_cao_hook_event`` attribute, as CAO's
registry finds them, and each is awaited in a fresh ``asyncio.run`` loop, as CAO does from
synchronous code. Events, in CAO's own order (a real cao-server fires the first terminal's
post_create_terminal before post_create_session, and on DELETE /sessions each terminal's
post_kill_terminal before post_kill_session):

  post_create_terminal  supervisor (a1b2c3d4, code_supervisor)
  post_create_session   session cao-demo
  post_create_terminal  worker     (e5f6a7b8, developer)
  post_send_message     supervisor -> worker, orchestration_type send_message
  post_kill_terminal    worker
  post_kill_terminal    supervisor
  post_kill_session     session cao-demo

Exits 0 when the sidecar accepted all seven events, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if importlib.util.find_spec("cli_agent_orchestrator") is None:
    sys.path.insert(0, str(ROOT / "tests" / "standin"))

from cli_agent_orchestrator.plugins.events import (  # noqa: E402
    PostCreateSessionEvent,
    PostCreateTerminalEvent,
    PostKillSessionEvent,
    PostKillTerminalEvent,
    PostSendMessageEvent,
)

from cao_events_plugin.forwarder import DEFAULT_URL, Forwarder  # noqa: E402
from cao_events_plugin.plugin import CaoEventsPlugin  # noqa: E402

SUPERVISOR = ("a1b2c3d4", "code_supervisor")
WORKER = ("e5f6a7b8", "developer")
PROVIDER = "claude_code"


def synthetic_session(session: str) -> list[tuple[str, object]]:
    return [
        (
            "post_create_terminal",
            PostCreateTerminalEvent(
                session_id=session, terminal_id=SUPERVISOR[0], agent_name=SUPERVISOR[1], provider=PROVIDER
            ),
        ),
        ("post_create_session", PostCreateSessionEvent(session_id=session, session_name=session)),
        (
            "post_create_terminal",
            PostCreateTerminalEvent(
                session_id=session, terminal_id=WORKER[0], agent_name=WORKER[1], provider=PROVIDER
            ),
        ),
        (
            "post_send_message",
            PostSendMessageEvent(
                session_id=session,
                sender=SUPERVISOR[0],
                receiver=WORKER[0],
                message="Please implement the parser and report back.",
                orchestration_type="send_message",
            ),
        ),
        (
            "post_kill_terminal",
            PostKillTerminalEvent(session_id=session, terminal_id=WORKER[0], agent_name=WORKER[1]),
        ),
        (
            "post_kill_terminal",
            PostKillTerminalEvent(session_id=session, terminal_id=SUPERVISOR[0], agent_name=SUPERVISOR[1]),
        ),
        ("post_kill_session", PostKillSessionEvent(session_id=session, session_name=session)),
    ]


def hooks_of(plugin: object) -> dict[str, list]:
    table: dict[str, list] = {}
    for _, method in inspect.getmembers(plugin, predicate=inspect.ismethod):
        event_type = getattr(method, "_cao_hook_event", None)
        if event_type is not None:
            table.setdefault(event_type, []).append(method)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default=None, help=f"ingest URL (default: $CAO_EVENTS_INGEST_URL or {DEFAULT_URL})")
    parser.add_argument("--token", default=None, help="bearer token (default: $CAO_EVENTS_INGEST_TOKEN)")
    parser.add_argument("--session", default="cao-demo")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for delivery")
    args = parser.parse_args(argv)

    plugin = CaoEventsPlugin(forwarder=Forwarder(url=args.url, token=args.token, probe_interval=0))
    asyncio.run(plugin.setup())
    hooks = hooks_of(plugin)
    events = synthetic_session(args.session)
    for event_type, event in events:
        for handler in hooks.get(event_type, []):
            asyncio.run(handler(event))

    flushed = plugin.forwarder.flush(args.timeout)
    stats = plugin.forwarder.stats()
    ok = flushed and stats["sent"] == len(events) and stats["dropped"] == 0
    print(f"feed_events: sent={stats['sent']} dropped={stats['dropped']} of {len(events)}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
