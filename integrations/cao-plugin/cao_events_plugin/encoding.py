"""Pure conversion of a CAO plugin event object into the JSON the sidecar ingests."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z`` suffix; naive values are taken as UTC
    (CAO's plugin events carry timezone-aware UTC timestamps)."""

    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    else:
        value = value.astimezone(timezone.utc)
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def json_value(value: Any) -> Any:
    """Map one field value onto a JSON-safe value."""

    if value is None or isinstance(value, (bool, int)) and not isinstance(value, Enum):
        return value
    if isinstance(value, Enum):
        return json_value(value.value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_value(v) for v in value]
    return str(value)


def event_fields(event: Any) -> dict[str, Any]:
    """The event's own fields: ``dataclasses.asdict`` for a dataclass, else ``vars``."""

    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        return dataclasses.asdict(event)
    if isinstance(event, Mapping):
        return dict(event)
    try:
        return dict(vars(event))
    except TypeError:
        return {}


def event_to_dict(
    event: Any, hook_name: str, now: datetime | None = None, event_id: str | None = None
) -> dict[str, Any]:
    """CAO's field names and values, JSON-safe. ``event_type`` falls back to the hook name
    and ``timestamp`` to ``now`` when the event lacks them. ``event_id`` (one per hook call)
    is added after CAO's fields unless CAO's event has one of its own: it tells two identical
    deliveries apart, and one delivery forwarded twice from the same."""

    out = {
        str(key): json_value(value)
        for key, value in event_fields(event).items()
        if not str(key).startswith("_")
    }
    if not out.get("event_type"):
        out["event_type"] = hook_name
    if not out.get("timestamp"):
        out["timestamp"] = iso_utc(now or datetime.now(timezone.utc))
    if event_id is not None and not out.get("event_id"):
        out["event_id"] = event_id
    return out


def encode_event(
    event: Any, hook_name: str, now: datetime | None = None, event_id: str | None = None
) -> bytes:
    """One request body: a compact UTF-8 JSON object."""

    return json.dumps(
        event_to_dict(event, hook_name, now, event_id), separators=(",", ":"), allow_nan=False
    ).encode("utf-8")
