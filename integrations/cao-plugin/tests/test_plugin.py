"""Tests for the cao-events CAO plugin (standard library only).

The real CAO (awslabs/cli-agent-orchestrator) is not installed here, so these tests use the
stand-in in tests/standin: the same ``cli_agent_orchestrator.plugins.base`` contract
(``CaoPlugin``, ``hook``, attribute ``_cao_hook_event``) and the same event dataclass field
names as CAO's ``plugins/events.py``. When the real CAO is importable it is used instead.

Run from the repository root:
    python3 -m unittest discover -s integrations/cao-plugin/tests -t integrations/cao-plugin -v
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import unittest
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "standin"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
REAL_CAO = importlib.util.find_spec("cli_agent_orchestrator") is not None
if not REAL_CAO:
    sys.path.insert(0, str(STANDIN))

from cli_agent_orchestrator.plugins import base as cao_base  # noqa: E402
from cli_agent_orchestrator.plugins.events import (  # noqa: E402
    PostCreateSessionEvent,
    PostCreateTerminalEvent,
    PostKillSessionEvent,
    PostKillTerminalEvent,
    PostSendMessageEvent,
)

from cao_events_plugin import _compat  # noqa: E402
from cao_events_plugin.encoding import event_to_dict  # noqa: E402
from cao_events_plugin.forwarder import (  # noqa: E402
    ENV_TIMEOUT,
    ENV_TOKEN,
    ENV_URL,
    THREAD_NAME,
    Forwarder,
    classify_status,
    resolve_settings,
)
from cao_events_plugin.plugin import HOOK_NAMES, CaoEventsPlugin  # noqa: E402

LOGGER = "cao_events_plugin"
COMMON = ["event_type", "timestamp", "session_id", "traceparent"]
KEYS = {
    "post_create_session": COMMON + ["session_name", "event_id"],
    "post_kill_session": COMMON + ["session_name", "event_id"],
    "post_create_terminal": COMMON + ["terminal_id", "agent_name", "provider", "event_id"],
    "post_kill_terminal": COMMON + ["terminal_id", "agent_name", "event_id"],
    "post_send_message": COMMON + ["sender", "receiver", "message", "orchestration_type", "event_id"],
}


# ---- a real local sidecar ----------------------------------------------------------------


class Sidecar:
    """ThreadingHTTPServer on 127.0.0.1 recording every request; answers ``status``.
    With ``gate`` set, each request blocks until the gate opens."""

    def __init__(self, port: int = 0, status: int = 202, gate: threading.Event | None = None,
                 location: str | None = None) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.entered = threading.Event()
        self.status = status
        self.gate = gate
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with outer.lock:
                    outer.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                outer.entered.set()
                if outer.gate is not None:
                    outer.gate.wait(10)
                self.send_response(outer.status)
                if location:
                    self.send_header("location", location)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1/cao/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Sidecar":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()

    def bodies(self) -> list[dict]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dispatch(plugin: object, event_type: str, event: object) -> None:
    """What CAO does from synchronous code: find hooks by attribute, await each in asyncio.run."""

    async def run() -> None:
        for _, method in inspect.getmembers(plugin, predicate=inspect.ismethod):
            if getattr(method, "_cao_hook_event", None) == event_type:
                await method(event)

    asyncio.run(run())


def sample_events(session: str = "cao-test") -> list[tuple[str, object]]:
    return [
        ("post_create_session", PostCreateSessionEvent(session_id=session, session_name=session)),
        ("post_create_terminal", PostCreateTerminalEvent(session_id=session, terminal_id="0a1b2c3d",
                                                         agent_name="code_supervisor", provider="kiro_cli")),
        ("post_send_message", PostSendMessageEvent(session_id=session, sender="0a1b2c3d", receiver="4e5f6a7b",
                                                   message="hello \u00e9\n\"quoted\"", orchestration_type="send_message",
                                                   traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")),
        ("post_kill_terminal", PostKillTerminalEvent(session_id=session, terminal_id="4e5f6a7b", agent_name=None)),
        ("post_kill_session", PostKillSessionEvent(session_id=session, session_name=session)),
    ]


def forwarder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


class Base(unittest.TestCase):
    def setUp(self) -> None:
        env = mock.patch.dict(os.environ)
        env.start()
        self.addCleanup(env.stop)
        for key in (ENV_URL, ENV_TOKEN, ENV_TIMEOUT):
            os.environ.pop(key, None)

    def plugin(self, **kwargs: object) -> CaoEventsPlugin:
        kwargs.setdefault("probe_interval", 0)
        forwarder = Forwarder(**kwargs)  # type: ignore[arg-type]
        self.addCleanup(forwarder.close, 5)
        return CaoEventsPlugin(forwarder=forwarder)


# ---- contract with CAO's loader ------------------------------------------------------------


class ContractTest(Base):
    def test_is_a_cao_plugin_with_five_hooks(self) -> None:
        self.assertTrue(issubclass(CaoEventsPlugin, cao_base.CaoPlugin))
        plugin = CaoEventsPlugin()
        found = {
            getattr(m, "_cao_hook_event")
            for _, m in inspect.getmembers(plugin, predicate=inspect.ismethod)
            if getattr(m, "_cao_hook_event", None) is not None
        }
        self.assertEqual(found, set(HOOK_NAMES))
        self.assertEqual(len(HOOK_NAMES), 5)

    def test_constructor_has_no_side_effects(self) -> None:
        before = set(threading.enumerate())
        bad_env = {ENV_URL: "::not a url", ENV_TIMEOUT: "soon", ENV_TOKEN: "t"}
        with mock.patch.dict(os.environ, bad_env), \
                mock.patch("socket.socket", side_effect=AssertionError("socket opened")), \
                mock.patch("threading.Thread.start", side_effect=AssertionError("thread started")), \
                mock.patch("os.environ.get", side_effect=AssertionError("environment read")):
            plugin = CaoEventsPlugin()
        self.assertEqual(set(threading.enumerate()), before)
        self.assertFalse(plugin.forwarder.started)
        self.assertEqual(plugin.forwarder.stats()["sent"], 0)

    def test_bad_environment_never_raises_and_starts_nothing(self) -> None:
        with mock.patch.dict(os.environ, {ENV_URL: "ftp://example/x", ENV_TIMEOUT: "-1"}):
            plugin = CaoEventsPlugin()
            with self.assertLogs(LOGGER, level="WARNING") as logs:
                asyncio.run(plugin.setup())
            self.assertEqual(len(logs.records), 2)  # one per bad setting
            dispatch(plugin, "post_create_session", PostCreateSessionEvent(session_name="cao-x"))
        self.assertFalse(plugin.forwarder.started)
        self.assertEqual(plugin.forwarder.dropped, 1)

    @unittest.skipIf(REAL_CAO, "the real CAO is installed: the fallback base is not used")
    def test_fallback_base_when_cao_is_absent(self) -> None:
        code = (
            "import sys, threading; sys.path.insert(0, sys.argv[1]);"
            "from cao_events_plugin import _compat; from cao_events_plugin.plugin import CaoEventsPlugin;"
            "assert not _compat.CAO_AVAILABLE;"
            "p = CaoEventsPlugin();"
            "hooks = sorted(getattr(getattr(p, n), '_cao_hook_event') for n in dir(p) if hasattr(getattr(p, n), '_cao_hook_event'));"
            "assert threading.active_count() == 1, threading.enumerate();"
            "print(','.join(hooks))"
        )
        out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip().split(","), sorted(HOOK_NAMES))
        self.assertEqual(_compat.CAO_AVAILABLE, True)  # in this process the stand-in plays CAO


# ---- what goes over the wire ---------------------------------------------------------------


class DeliveryTest(Base):
    def test_every_hook_posts_its_event_as_json(self) -> None:
        with Sidecar() as sidecar:
            plugin = self.plugin(url=sidecar.url)
            events = sample_events()
            for event_type, event in events:
                dispatch(plugin, event_type, event)
            self.assertTrue(plugin.forwarder.flush(10))
            self.assertEqual(plugin.forwarder.stats()["sent"], 5)
            self.assertEqual(plugin.forwarder.dropped, 0)
            self.assertEqual(len(sidecar.requests), 5)
            for request in sidecar.requests:
                self.assertEqual(request["path"], "/v1/cao/events")
                self.assertEqual(request["headers"]["content-type"], "application/json")
                self.assertNotIn("authorization", request["headers"])
            by_type = {body["event_type"]: body for body in sidecar.bodies()}

        self.assertEqual(set(by_type), set(KEYS))
        for event_type, event in events:
            body = by_type[event_type]
            self.assertEqual(list(body), KEYS[event_type], event_type)
            self.assertTrue(body["timestamp"].endswith("Z"))
            parsed = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
            self.assertEqual(parsed, event.timestamp)  # type: ignore[attr-defined]
            self.assertEqual(body["session_id"], "cao-test")
        self.assertEqual(by_type["post_create_session"]["session_name"], "cao-test")
        self.assertEqual(by_type["post_create_terminal"]["terminal_id"], "0a1b2c3d")
        self.assertEqual(by_type["post_create_terminal"]["agent_name"], "code_supervisor")
        self.assertEqual(by_type["post_create_terminal"]["provider"], "kiro_cli")
        self.assertIsNone(by_type["post_kill_terminal"]["agent_name"])
        message = by_type["post_send_message"]
        self.assertEqual(message["sender"], "0a1b2c3d")
        self.assertEqual(message["receiver"], "4e5f6a7b")
        self.assertEqual(message["message"], "hello \u00e9\n\"quoted\"")
        self.assertEqual(message["orchestration_type"], "send_message")
        self.assertTrue(message["traceparent"].startswith("00-0af7651916cd43dd"))
        self.assertIsNone(by_type["post_create_session"]["traceparent"])
        ids = [body["event_id"] for body in by_type.values()]
        self.assertTrue(all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids)
        self.assertEqual(len(set(ids)), len(ids), "one id per hook call")

    def test_two_identical_deliveries_carry_two_ids(self) -> None:
        with Sidecar() as sidecar:
            plugin = self.plugin(url=sidecar.url)
            event = dict(sample_events())["post_send_message"]
            dispatch(plugin, "post_send_message", event)
            dispatch(plugin, "post_send_message", event)
            self.assertTrue(plugin.forwarder.flush(10))
            bodies = sidecar.bodies()
        self.assertEqual(len(bodies), 2)
        self.assertEqual({k: v for k, v in bodies[0].items() if k != "event_id"}, {k: v for k, v in bodies[1].items() if k != "event_id"})
        self.assertNotEqual(bodies[0]["event_id"], bodies[1]["event_id"])

    def test_event_id_never_replaces_one_of_caos(self) -> None:
        out = event_to_dict({"event_type": "post_kill_session", "event_id": "cao-own"}, "post_kill_session", event_id="ours")
        self.assertEqual(out["event_id"], "cao-own")
        self.assertEqual(event_to_dict({"event_type": "x"}, "x", event_id="ours")["event_id"], "ours")
        self.assertNotIn("event_id", event_to_dict({"event_type": "x"}, "x"))

    def test_hooks_from_asyncio_run_on_worker_threads(self) -> None:
        with Sidecar() as sidecar:
            plugin = self.plugin(url=sidecar.url)
            errors: list[BaseException] = []

            def worker(i: int) -> None:
                try:  # a fresh event loop per call, closed afterwards, as CAO does
                    asyncio.run(plugin.on_post_send_message(
                        PostSendMessageEvent(session_id="cao-w", sender="a", receiver="b",
                                             message=f"m{i}", orchestration_type="assign")))
                except BaseException as exc:  # pragma: no cover
                    errors.append(exc)

            for i in range(3):  # one after another: the first loop is long gone for the others
                t = threading.Thread(target=worker, args=(i,))
                t.start()
                t.join()

            async def on_a_running_loop() -> None:  # the FastAPI path: a task on the server loop
                await asyncio.get_running_loop().create_task(
                    plugin.on_post_kill_session(PostKillSessionEvent(session_id="cao-w", session_name="cao-w")))

            asyncio.run(on_a_running_loop())
            self.assertTrue(plugin.forwarder.flush(10))
            self.assertEqual(errors, [])
            self.assertEqual([b.get("message") for b in sidecar.bodies()], ["m0", "m1", "m2", None])
            self.assertEqual(plugin.forwarder.sent, 4)

    def test_concurrent_hooks(self) -> None:
        threads_before = len(forwarder_threads())
        with Sidecar() as sidecar:
            plugin = self.plugin(url=sidecar.url)
            start = threading.Barrier(8)

            def worker(n: int) -> None:
                start.wait()
                for i in range(25):
                    dispatch(plugin, "post_send_message",
                             PostSendMessageEvent(session_id="cao-c", sender=f"s{n}", receiver="r",
                                                  message=f"{n}-{i}", orchestration_type="send_message"))

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertTrue(plugin.forwarder.flush(30))
            messages = sorted(b["message"] for b in sidecar.bodies())
        self.assertEqual(messages, sorted(f"{n}-{i}" for n in range(8) for i in range(25)))
        self.assertEqual(plugin.forwarder.stats()["sent"], 200)
        self.assertEqual(plugin.forwarder.dropped, 0)
        self.assertEqual(len(forwarder_threads()) - threads_before, 1)  # exactly one worker thread

    def test_token_header_from_environment(self) -> None:
        with Sidecar() as sidecar:
            os.environ[ENV_URL] = sidecar.url
            os.environ[ENV_TOKEN] = "s3cret"
            plugin = self.plugin()
            asyncio.run(plugin.setup())
            dispatch(plugin, "post_create_session", PostCreateSessionEvent(session_id="cao-t", session_name="cao-t"))
            self.assertTrue(plugin.forwarder.flush(10))
            self.assertEqual(len(sidecar.requests), 1)
            self.assertEqual(sidecar.requests[0]["headers"]["authorization"], "Bearer s3cret")

    def test_loopback_sidecar_bypasses_proxy_environment(self) -> None:
        os.environ["http_proxy"] = os.environ["HTTP_PROXY"] = f"http://127.0.0.1:{free_port()}"
        os.environ.pop("no_proxy", None)
        os.environ.pop("NO_PROXY", None)
        with Sidecar() as sidecar:
            plugin = self.plugin(url=sidecar.url)
            dispatch(plugin, "post_kill_session", PostKillSessionEvent(session_name="cao-p"))
            self.assertTrue(plugin.forwarder.flush(10))
            self.assertEqual(plugin.forwarder.sent, 1)

    def test_redirect_is_not_followed(self) -> None:
        with Sidecar() as elsewhere, Sidecar(status=307, location=elsewhere.url) as redirecting:
            plugin = self.plugin(url=redirecting.url, token="tok")
            with self.assertLogs(LOGGER, level="WARNING") as logs:
                dispatch(plugin, "post_kill_session", PostKillSessionEvent(session_name="cao-r"))
                self.assertTrue(plugin.forwarder.flush(10))
            self.assertEqual(len(redirecting.requests), 1)
            self.assertEqual(len(elsewhere.requests), 0)  # the token never leaves for another URL
        self.assertIn("rejected", logs.records[0].getMessage())
        self.assertEqual(plugin.forwarder.stats()["dropped_rejected"], 1)


# ---- failure modes -------------------------------------------------------------------------


class FailureTest(Base):
    def test_sidecar_down_then_back(self) -> None:
        port = free_port()
        url = f"http://127.0.0.1:{port}/v1/cao/events"
        plugin = self.plugin(url=url)
        with self.assertLogs(LOGGER, level="INFO") as logs:
            for i in range(3):
                dispatch(plugin, "post_send_message", PostSendMessageEvent(message=f"lost {i}"))
            self.assertTrue(plugin.forwarder.flush(10))
            self.assertEqual(plugin.forwarder.stats()["sent"], 0)
            self.assertEqual(plugin.forwarder.dropped, 3)
            with Sidecar(port=port) as sidecar:
                dispatch(plugin, "post_send_message", PostSendMessageEvent(message="kept"))
                dispatch(plugin, "post_send_message", PostSendMessageEvent(message="kept too"))
                self.assertTrue(plugin.forwarder.flush(10))
                self.assertEqual([b["message"] for b in sidecar.bodies()], ["kept", "kept too"])
        warnings = [r for r in logs.records if r.levelno == logging.WARNING]
        infos = [r for r in logs.records if r.levelno == logging.INFO and "reachable again" in r.getMessage()]
        self.assertEqual(len(warnings), 1, [r.getMessage() for r in logs.records])
        self.assertIn("unreachable", warnings[0].getMessage())
        self.assertEqual(len(infos), 1)
        self.assertIn("3 events dropped", infos[0].getMessage())
        for record in logs.records:  # never a message body in the logs
            self.assertNotIn("lost", record.getMessage())
        self.assertEqual(plugin.forwarder.stats()["sent"], 2)

    def test_server_errors_are_an_outage_and_are_not_hammered(self) -> None:
        with Sidecar(status=503) as sidecar:
            plugin = self.plugin(url=sidecar.url, probe_interval=3600)
            with self.assertLogs(LOGGER, level="WARNING") as logs:
                for _ in range(4):
                    dispatch(plugin, "post_kill_session", PostKillSessionEvent(session_name="cao-5"))
                self.assertTrue(plugin.forwarder.flush(10))
            self.assertEqual(len(sidecar.requests), 1)  # later events dropped without an attempt
        self.assertEqual(len(logs.records), 1)
        self.assertEqual(plugin.forwarder.dropped, 4)

    def test_queue_full_drops_and_counts(self) -> None:
        gate = threading.Event()
        with Sidecar(gate=gate) as sidecar:
            plugin = self.plugin(url=sidecar.url, maxsize=2, timeout=20)
            with self.assertLogs(LOGGER, level="WARNING") as logs:
                dispatch(plugin, "post_kill_session", PostKillSessionEvent(session_name="in-flight"))
                self.assertTrue(sidecar.entered.wait(10))  # the worker is now stuck in a request
                for i in range(5):
                    dispatch(plugin, "post_kill_session", PostKillSessionEvent(session_name=f"q{i}"))
                stats = plugin.forwarder.stats()
                self.assertEqual(stats["dropped_queue_full"], 3)
                self.assertEqual(stats["dropped"], 3)
                gate.set()
                self.assertTrue(plugin.forwarder.flush(10))
            self.assertEqual([b["session_name"] for b in sidecar.bodies()], ["in-flight", "q0", "q1"])
        self.assertEqual(len(logs.records), 1)
        self.assertIn("queue full", logs.records[0].getMessage())
        self.assertEqual(plugin.forwarder.sent, 3)

    def test_event_without_fields_still_names_its_hook(self) -> None:
        class Weird:
            __slots__ = ()

        with Sidecar() as sidecar:
            plugin = self.plugin(url=sidecar.url)
            dispatch(plugin, "post_create_terminal", Weird())
            self.assertTrue(plugin.forwarder.flush(10))
            self.assertEqual(sidecar.bodies()[0]["event_type"], "post_create_terminal")


# ---- pure helpers ----------------------------------------------------------------------------


class PureTest(unittest.TestCase):
    def test_event_to_dict_uses_vars_for_plain_objects(self) -> None:
        class Plain:
            def __init__(self) -> None:
                self.event_type = ""
                self.timestamp = datetime(2026, 1, 2, 3, 4, 5, 600000)
                self.terminal_id = "abcd1234"
                self._private = "x"

        out = event_to_dict(Plain(), "post_kill_terminal")
        self.assertEqual(out, {"event_type": "post_kill_terminal",
                               "timestamp": "2026-01-02T03:04:05.600000Z", "terminal_id": "abcd1234"})

    def test_timestamps_become_utc(self) -> None:
        from datetime import timedelta
        event = PostCreateSessionEvent(timestamp=datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))
        self.assertEqual(event_to_dict(event, "x")["timestamp"], "2026-01-01T10:00:00.000000Z")

    def test_classify_status(self) -> None:
        self.assertEqual([classify_status(s) for s in (200, 202, 307, 400, 401, 408, 429, 500, 503)],
                         ["ok", "ok", "rejected", "rejected", "rejected", "outage", "outage", "outage", "outage"])

    def test_resolve_settings(self) -> None:
        settings, problems = resolve_settings({})
        self.assertEqual((settings.url, settings.token, settings.timeout),
                         ("http://127.0.0.1:4319/v1/cao/events", None, 2.0))
        self.assertEqual(problems, [])
        settings, problems = resolve_settings({ENV_URL: "https://h:1/x", ENV_TOKEN: " t ", ENV_TIMEOUT: "0.5"})
        self.assertEqual((settings.url, settings.token, settings.timeout), ("https://h:1/x", "t", 0.5))
        settings, problems = resolve_settings({ENV_URL: "http://h:99999/", ENV_TIMEOUT: "nan"})
        self.assertIsNone(settings.url)
        self.assertEqual(settings.timeout, 2.0)
        self.assertEqual(len(problems), 2)


# ---- the end-to-end feeder ---------------------------------------------------------------------


class FeedEventsToolTest(Base):
    def test_feed_events_script(self) -> None:
        with Sidecar() as sidecar:
            out = subprocess.run([sys.executable, str(ROOT / "tools" / "feed_events.py"), sidecar.url,
                                  "--token", "tk"], capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            bodies = sidecar.bodies()
            self.assertTrue(all(r["headers"]["authorization"] == "Bearer tk" for r in sidecar.requests))
        # CAO's own order: the first terminal's hook before the session's
        self.assertEqual([b["event_type"] for b in bodies], [
            "post_create_terminal", "post_create_session", "post_create_terminal", "post_send_message",
            "post_kill_terminal", "post_kill_terminal", "post_kill_session"])
        self.assertTrue(all(b["session_id"] == "cao-demo" for b in bodies))

    def test_feed_events_fails_when_nothing_listens(self) -> None:
        url = f"http://127.0.0.1:{free_port()}/v1/cao/events"
        out = subprocess.run([sys.executable, str(ROOT / "tools" / "feed_events.py"), url],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1)


if __name__ == "__main__":
    unittest.main()
