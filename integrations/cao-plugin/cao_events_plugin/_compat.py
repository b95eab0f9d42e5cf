"""CAO's plugin base class and hook decorator, or a minimal local equivalent.

CAO's loader accepts only subclasses of its own ``CaoPlugin`` and finds hooks by the
``_cao_hook_event`` attribute the ``hook`` decorator sets, so the real classes are used
whenever CAO is importable. The fallback exists so this package imports (and its tests
run) without CAO installed; CAO never sees it.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

HOOK_EVENT_ATTR = "_cao_hook_event"

try:
    from cli_agent_orchestrator.plugins.base import CaoPlugin, hook

    CAO_AVAILABLE = True
except ImportError:
    CAO_AVAILABLE = False

    class CaoPlugin:  # type: ignore[no-redef]
        """Local stand-in for ``cli_agent_orchestrator.plugins.base.CaoPlugin``."""

        async def setup(self) -> None:
            """Called once after instantiation."""

        async def teardown(self) -> None:
            """Called once on shutdown."""

        def on_mcp_server(self, mcp: Any) -> None:
            """Called in cao-mcp-server processes; nothing to register."""

    def hook(event_type: str) -> Callable[[F], F]:  # type: ignore[no-redef]
        """Mark an async method as the handler of one CAO event type."""

        def mark(fn: F) -> F:
            setattr(fn, HOOK_EVENT_ATTR, event_type)
            return fn

        return mark
