"""One subject scheme for the whole log: greenai.evt.<experiment_id>.<type>.

Types are dotted (``quantize.requested``), so an agent subscribes to one kind of event across all
experiments with ``greenai.evt.*.quantize.requested`` and a replay reads ``greenai.evt.<exp>.>``.
"""

from __future__ import annotations

import re

PREFIX = "greenai.evt"
EXPERIMENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"
_EXPERIMENT_RE = re.compile(EXPERIMENT_ID_PATTERN)
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# Events about messages that could not be tied to a valid experiment go here.
SYSTEM_EXPERIMENT = "_system"


def check_experiment_id(experiment_id: str) -> str:
    if not _EXPERIMENT_RE.match(experiment_id):
        raise ValueError(f"experiment id {experiment_id!r} must be 1-80 characters of letters, digits, '_' or '-'")
    return experiment_id


def event_subject(experiment_id: str, type_: str) -> str:
    check_experiment_id(experiment_id)
    if not _TYPE_RE.match(type_):
        raise ValueError(f"event type {type_!r} must be dotted lowercase words")
    return f"{PREFIX}.{experiment_id}.{type_}"


def experiment_filter(experiment_id: str) -> str:
    return f"{PREFIX}.{check_experiment_id(experiment_id)}.>"


def type_filter(type_: str) -> str:
    return f"{PREFIX}.*.{type_}"


def all_events() -> str:
    return f"{PREFIX}.>"


def experiment_of_subject(subject: str) -> str | None:
    """The experiment token of a subject, if it is one of ours and well formed."""
    parts = subject.split(".")
    if len(parts) < 4 or ".".join(parts[:2]) != PREFIX:
        return None
    return parts[2] if _EXPERIMENT_RE.match(parts[2]) else None
