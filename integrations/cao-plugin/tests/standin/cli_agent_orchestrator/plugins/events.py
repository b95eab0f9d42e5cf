"""Stand-in for cli_agent_orchestrator.plugins.events: same class names, field names, order
and defaults as CAO v2.4.x (``traceparent`` arrived in v2.4.0)."""

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class CaoEvent:
    event_type: str = ""
    timestamp: datetime = field(default_factory=_now)
    session_id: Optional[str] = None
    traceparent: Optional[str] = None


@dataclass
class PostSendMessageEvent(CaoEvent):
    event_type: str = "post_send_message"
    sender: str = ""
    receiver: str = ""
    message: str = ""
    orchestration_type: str = ""


@dataclass
class PostCreateSessionEvent(CaoEvent):
    event_type: str = "post_create_session"
    session_name: str = ""


@dataclass
class PostKillSessionEvent(CaoEvent):
    event_type: str = "post_kill_session"
    session_name: str = ""


@dataclass
class PostCreateTerminalEvent(CaoEvent):
    event_type: str = "post_create_terminal"
    terminal_id: str = ""
    agent_name: Optional[str] = None
    provider: str = ""


@dataclass
class PostKillTerminalEvent(CaoEvent):
    event_type: str = "post_kill_terminal"
    terminal_id: str = ""
    agent_name: Optional[str] = None
