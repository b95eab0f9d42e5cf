"""Stand-in for cli_agent_orchestrator.plugins (see the package docstring)."""

from cli_agent_orchestrator.plugins.base import CaoPlugin, hook
from cli_agent_orchestrator.plugins.events import (
    CaoEvent,
    PostCreateSessionEvent,
    PostCreateTerminalEvent,
    PostKillSessionEvent,
    PostKillTerminalEvent,
    PostSendMessageEvent,
)

__all__ = [
    "CaoPlugin",
    "hook",
    "CaoEvent",
    "PostCreateSessionEvent",
    "PostCreateTerminalEvent",
    "PostKillSessionEvent",
    "PostKillTerminalEvent",
    "PostSendMessageEvent",
]
