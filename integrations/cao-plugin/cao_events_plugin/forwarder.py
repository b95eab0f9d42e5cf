"""Fire-and-forget delivery of JSON event bodies to the cao-events sidecar.

A bounded ``queue.Queue`` and one daemon thread that POSTs with ``urllib``: nothing here is
bound to an event loop, so hooks may run on CAO's main loop or in a fresh ``asyncio.run``
loop on any worker thread. Nothing is retried: an event that cannot be delivered is dropped
and counted, and nothing ever raises into the caller.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_URL = "CAO_EVENTS_INGEST_URL"
ENV_TOKEN = "CAO_EVENTS_INGEST_TOKEN"
ENV_TIMEOUT = "CAO_EVENTS_INGEST_TIMEOUT"

DEFAULT_URL = "http://127.0.0.1:4319/v1/cao/events"
DEFAULT_TIMEOUT = 2.0
DEFAULT_MAXSIZE = 10000
# While the sidecar is down, at most one delivery attempt per interval; events in between are
# dropped without an attempt, so a black-holed sidecar (every attempt a time-out) cannot back
# the queue up with stale events.
DEFAULT_PROBE_INTERVAL = 1.0

THREAD_NAME = "cao-events-forwarder"

logger = logging.getLogger("cao_events_plugin")

_STOP = object()


@dataclass(frozen=True)
class Settings:
    url: str | None  # None: unusable URL, every event is dropped
    token: str | None
    timeout: float


def safe_url(url: str) -> str:
    """The URL for log lines: no user info, no query string, no fragment."""

    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    except ValueError:
        return "<invalid URL>"


def resolve_settings(
    environ: Mapping[str, str],
    url: str | None = None,
    token: str | None = None,
    timeout: float | None = None,
) -> tuple[Settings, list[str]]:
    """Explicit arguments, else the environment, else defaults. Never raises: problems are
    returned as log-ready strings."""

    problems: list[str] = []

    raw_url = (url if url is not None else environ.get(ENV_URL, "")).strip() or DEFAULT_URL
    checked_url: str | None = raw_url
    try:
        parts = urllib.parse.urlsplit(raw_url)
        _ = parts.port  # raises ValueError on a bad port
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("scheme must be http or https, with a host")
    except ValueError as exc:
        problems.append(f"{ENV_URL} is not a usable http(s) URL ({exc}); events will be dropped")
        checked_url = None

    raw_token = token if token is not None else environ.get(ENV_TOKEN, "")
    checked_token = raw_token.strip() or None

    checked_timeout = DEFAULT_TIMEOUT
    if timeout is not None:
        checked_timeout = float(timeout)
    else:
        raw_timeout = environ.get(ENV_TIMEOUT, "").strip()
        if raw_timeout:
            try:
                checked_timeout = float(raw_timeout)
            except ValueError:
                checked_timeout = -1.0
    if not (checked_timeout > 0 and checked_timeout < float("inf")):
        problems.append(f"{ENV_TIMEOUT} must be a positive number of seconds; using {DEFAULT_TIMEOUT}")
        checked_timeout = DEFAULT_TIMEOUT

    return Settings(checked_url, checked_token, checked_timeout), problems


def classify_status(status: int) -> str:
    """``ok`` (2xx), ``outage`` (408, 429, 5xx: the sidecar cannot take events now) or
    ``rejected`` (any other answer: the sidecar is up but refused this event)."""

    if 200 <= status < 300:
        return "ok"
    if status in (408, 429) or status >= 500:
        return "outage"
    return "rejected"


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, not invitations: following one would re-send the token."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        return None


def build_opener(url: str) -> urllib.request.OpenerDirector:
    """No redirects; no proxy for a loopback sidecar (an ``http_proxy`` meant for the
    internet must not capture 127.0.0.1), the environment's proxies otherwise."""

    handlers: list[Any] = [_NoRedirect()]
    if is_loopback_host(urllib.parse.urlsplit(url).hostname):
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)


class Forwarder:
    """Bounded queue plus one lazily started daemon thread posting one event per request.

    Constructing it has no side effects: no thread, no socket, no environment read.
    Arguments left as None are read from the environment on first use.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        maxsize: int = DEFAULT_MAXSIZE,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._args = (url, token, timeout)
        self._environ = environ
        self._maxsize = max(1, int(maxsize))
        self._probe_interval = max(0.0, float(probe_interval))

        self._cond = threading.Condition()
        self._settings: Settings | None = None
        self._opener: urllib.request.OpenerDirector | None = None
        self._queue: queue.Queue[Any] = queue.Queue(self._maxsize)
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._pending = 0  # accepted by submit(), not yet finished by the worker

        self._sent = 0
        self._dropped_queue_full = 0
        self._dropped_failed = 0
        self._dropped_rejected = 0

        self._down = False
        self._next_probe = 0.0
        self._dropped_before_outage = 0
        self._overflowing = False
        self._warned_statuses: set[int] = set()

    # ---- counters -------------------------------------------------------------------

    @property
    def sent(self) -> int:
        with self._cond:
            return self._sent

    @property
    def dropped(self) -> int:
        with self._cond:
            return self._dropped_total()

    @property
    def started(self) -> bool:
        with self._cond:
            return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {
                "sent": self._sent,
                "dropped": self._dropped_total(),
                "dropped_queue_full": self._dropped_queue_full,
                "dropped_failed": self._dropped_failed,
                "dropped_rejected": self._dropped_rejected,
                "pending": self._pending,
            }

    def _dropped_total(self) -> int:
        return self._dropped_queue_full + self._dropped_failed + self._dropped_rejected

    def record_drop(self) -> None:
        """Count an event that never reached submit() (e.g. it could not be encoded)."""

        with self._cond:
            self._dropped_failed += 1

    # ---- configuration ----------------------------------------------------------------

    def configure(self) -> Settings:
        """Resolve settings once (first call wins); logs configuration problems once."""

        with self._cond:
            if self._settings is not None:
                return self._settings
            environ = self._environ if self._environ is not None else os.environ
            settings, problems = resolve_settings(environ, *self._args)
            self._settings = settings
            if settings.url is not None:
                self._opener = build_opener(settings.url)
        for problem in problems:
            logger.warning("cao-events plugin: %s", problem)
        return settings

    # ---- producer side (any thread, any event loop; never blocks) --------------------

    def submit(self, body: bytes) -> bool:
        """Queue one JSON body. Returns False when the event was dropped."""

        settings = self._settings or self.configure()
        warn_full = False
        with self._cond:
            if settings.url is None:
                self._dropped_failed += 1
                return False
            self._ensure_worker_locked()
            try:
                self._queue.put_nowait(body)
            except queue.Full:
                self._dropped_queue_full += 1
                warn_full = not self._overflowing
                self._overflowing = True
            else:
                self._pending += 1
                return True
        if warn_full:
            logger.warning(
                "cao-events plugin: queue full (%d events); dropping events until it drains",
                self._maxsize,
            )
        return False

    def _ensure_worker_locked(self) -> None:
        pid = os.getpid()
        if self._pid is not None and self._pid != pid:
            # Forked child: the parent's thread does not exist here; start over.
            self._queue = queue.Queue(self._maxsize)
            self._thread = None
            self._pending = 0
        if self._thread is None or not self._thread.is_alive():
            thread = threading.Thread(
                target=self._run, args=(self._queue,), name=THREAD_NAME, daemon=True
            )
            thread.start()
            self._thread = thread
            self._pid = pid

    # ---- draining --------------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every accepted event was sent or dropped. True if that happened in time."""

        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float = 5.0) -> bool:
        """Flush, then stop the worker thread (a later submit() starts a new one)."""

        deadline = time.monotonic() + max(0.0, timeout)
        flushed = self.flush(timeout)
        with self._cond:
            thread = self._thread
            q = self._queue
            if thread is None or not thread.is_alive():
                return flushed
            # Forget it first: a submit() racing with close() starts a fresh worker on the same
            # queue instead of queueing behind the stop marker with nobody left to take it.
            self._thread = None
        try:
            q.put(_STOP, timeout=max(0.01, deadline - time.monotonic()))
        except queue.Full:
            return False
        thread.join(max(0.0, deadline - time.monotonic()))
        return flushed and not thread.is_alive()

    # ---- consumer side (the daemon thread) ----------------------------------------------

    def _run(self, q: queue.Queue[Any]) -> None:
        while True:
            item = q.get()
            if item is _STOP:
                return
            try:
                self._deliver(item)
            except Exception:  # the worker must survive anything
                logger.debug("cao-events plugin: delivery failed unexpectedly", exc_info=True)
                with self._cond:
                    self._dropped_failed += 1
            finally:
                self._finish_one(q)

    def _finish_one(self, q: queue.Queue[Any]) -> None:
        drained = None
        with self._cond:
            self._pending = max(0, self._pending - 1)
            if self._overflowing and q.empty():
                self._overflowing = False
                drained = self._dropped_queue_full
            if self._pending == 0:
                self._cond.notify_all()
        if drained is not None:
            logger.info(
                "cao-events plugin: queue drained; %d events dropped on a full queue so far",
                drained,
            )

    def _deliver(self, body: bytes) -> None:
        with self._cond:
            if self._down and time.monotonic() < self._next_probe:
                self._dropped_failed += 1
                return
            settings = self._settings
            opener = self._opener
        if settings is None or settings.url is None or opener is None:  # not reachable via submit()
            with self._cond:
                self._dropped_failed += 1
            return

        outcome, detail, status = self._post(opener, settings, body)

        logs: list[tuple[int, str, tuple[Any, ...]]] = []
        where = safe_url(settings.url)
        with self._cond:
            if outcome == "outage":
                self._dropped_failed += 1
                self._next_probe = time.monotonic() + self._probe_interval
                if not self._down:
                    self._down = True
                    self._dropped_before_outage = self._dropped_total() - 1
                    logs.append((
                        logging.WARNING,
                        "cao-events plugin: sidecar at %s unreachable (%s); dropping events until it recovers",
                        (where, detail),
                    ))
            else:
                if self._down:  # it answered: the outage is over
                    self._down = False
                    logs.append((
                        logging.INFO,
                        "cao-events plugin: sidecar at %s reachable again; %d events dropped during the outage",
                        (where, self._dropped_total() - self._dropped_before_outage),
                    ))
                if outcome == "ok":
                    self._sent += 1
                else:
                    self._dropped_rejected += 1
                    if status not in self._warned_statuses:
                        self._warned_statuses.add(status)
                        logs.append((
                            logging.WARNING,
                            "cao-events plugin: sidecar at %s rejected an event (%s); events it rejects are dropped",
                            (where, detail),
                        ))
        for level, message, args in logs:
            logger.log(level, message, *args)

    @staticmethod
    def _post(
        opener: urllib.request.OpenerDirector, settings: Settings, body: bytes
    ) -> tuple[str, str, int]:
        """One POST. Returns (outcome, loggable detail, HTTP status or 0)."""

        headers = {"content-type": "application/json"}
        if settings.token:
            headers["authorization"] = f"Bearer {settings.token}"
        request = urllib.request.Request(settings.url or "", data=body, headers=headers, method="POST")
        try:
            with opener.open(request, timeout=settings.timeout) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        except urllib.error.URLError as exc:
            return "outage", _describe(exc.reason), 0
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return "outage", _describe(exc), 0
        return classify_status(status), f"HTTP {status}", status


def _describe(reason: Any) -> str:
    if isinstance(reason, BaseException):
        text = str(reason) or type(reason).__name__
        return f"{type(reason).__name__}: {text}"[:200]
    return str(reason)[:200]
