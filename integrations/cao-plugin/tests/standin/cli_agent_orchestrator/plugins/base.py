"""Stand-in for cli_agent_orchestrator.plugins.base: the marker base class and the decorator
whose attribute CAO's registry looks for."""

from typing import Any, Callable

_HOOK_EVENT_ATTR = "_cao_hook_event"


class CaoPlugin:
    async def setup(self) -> None:
        pass

    async def teardown(self) -> None:
        pass

    def on_mcp_server(self, mcp: Any) -> None:
        pass


def hook(event_type: str) -> Callable[[Any], Any]:
    def mark(fn: Any) -> Any:
        setattr(fn, _HOOK_EVENT_ATTR, event_type)
        return fn

    return mark
