"""The event vocabulary: immutable, versioned pydantic models and the subject scheme.

Importing this package registers every event type (see `registry`).
"""

from greenai.events import cancellation, capabilities, experiment, jobs, results  # noqa: F401  (registration side effect)
from greenai.events.envelope import Envelope, EventData, MalformedEvent, decode, new_event
from greenai.events.registry import event_types
from greenai.events.subjects import (
    EXPERIMENT_ID_PATTERN,
    event_subject,
    experiment_filter,
    type_filter,
)

__all__ = [
    "EXPERIMENT_ID_PATTERN",
    "Envelope",
    "EventData",
    "MalformedEvent",
    "decode",
    "event_subject",
    "event_types",
    "experiment_filter",
    "new_event",
    "type_filter",
]
