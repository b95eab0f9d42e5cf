"""The CAO plugin: every lifecycle and message hook becomes one JSON POST to the sidecar.

CAO instantiates this class with no arguments in cao-server and in every cao-mcp-server
process, so the constructor only builds in-memory objects: the forwarder's thread starts on
the first event, its settings are read from the environment in ``setup()`` or on first use.
Hooks never block and never raise.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from ._compat import CaoPlugin, hook
from .encoding import encode_event
from .forwarder import Forwarder, safe_url

logger = logging.getLogger("cao_events_plugin")

HOOK_NAMES = (
    "post_create_session",
    "post_kill_session",
    "post_create_terminal",
    "post_kill_terminal",
    "post_send_message",
)

TEARDOWN_FLUSH_SECONDS = 3.0


class CaoEventsPlugin(CaoPlugin):
    """Forwards CAO plugin events to the cao-events ingest endpoint."""

    def __init__(self, forwarder: Forwarder | None = None) -> None:
        super().__init__()
        self._forwarder = forwarder if forwarder is not None else Forwarder()

    @property
    def forwarder(self) -> Forwarder:
        return self._forwarder

    async def setup(self) -> None:
        try:
            settings = self._forwarder.configure()
            if settings.url is not None:
                logger.info("cao-events plugin: forwarding CAO events to %s", safe_url(settings.url))
        except Exception:
            logger.warning("cao-events plugin: setup failed; events will be dropped", exc_info=True)

    async def teardown(self) -> None:
        try:
            await asyncio.to_thread(self._forwarder.close, TEARDOWN_FLUSH_SECONDS)
        except Exception:
            logger.debug("cao-events plugin: teardown flush failed", exc_info=True)

    def _forward(self, hook_name: str, event: Any) -> None:
        try:
            body = encode_event(event, hook_name, event_id=uuid.uuid4().hex)
        except Exception:
            logger.debug("cao-events plugin: could not encode a %s event", hook_name, exc_info=True)
            self._forwarder.record_drop()
            return
        try:
            self._forwarder.submit(body)
        except Exception:
            logger.debug("cao-events plugin: could not queue a %s event", hook_name, exc_info=True)
            self._forwarder.record_drop()

    @hook("post_create_session")
    async def on_post_create_session(self, event: Any) -> None:
        self._forward("post_create_session", event)

    @hook("post_kill_session")
    async def on_post_kill_session(self, event: Any) -> None:
        self._forward("post_kill_session", event)

    @hook("post_create_terminal")
    async def on_post_create_terminal(self, event: Any) -> None:
        self._forward("post_create_terminal", event)

    @hook("post_kill_terminal")
    async def on_post_kill_terminal(self, event: Any) -> None:
        self._forward("post_kill_terminal", event)

    @hook("post_send_message")
    async def on_post_send_message(self, event: Any) -> None:
        self._forward("post_send_message", event)
