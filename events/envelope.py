"""The envelope every event travels in, and strict decoding of raw messages."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    StringConstraints,
    ValidationError,
    model_validator,
)

from greenai.events import registry
from greenai.events.subjects import EXPERIMENT_ID_PATTERN, event_subject

ExperimentId = Annotated[str, StringConstraints(pattern=EXPERIMENT_ID_PATTERN)]
# Deterministic ids (uuid5 of a stable key) make re-sent events collapse into one in the log.
NAMESPACE = uuid.UUID("6f1d3c1e-4a7b-5d2e-9c8f-0b1a2c3d4e5f")


class EventData(BaseModel):
    """Base of every event body: immutable, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


class MalformedEvent(ValueError):
    """A message that is not a valid event: bad JSON, unknown type or version, or invalid fields."""


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    experiment_id: ExperimentId
    type: str
    version: int = Field(ge=1)
    time: datetime
    causation_id: uuid.UUID | None = None
    correlation_id: uuid.UUID | None = None
    producer: str
    data: SerializeAsAny[EventData]

    @model_validator(mode="before")
    @classmethod
    def _typed_data(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        data = values.get("data")
        type_, version = values.get("type"), values.get("version")
        if isinstance(data, EventData):
            if (type_, version) != (data.TYPE, data.VERSION):
                raise ValueError(f"data is {data.TYPE} v{data.VERSION}, envelope says {type_} v{version}")
            return values
        if not isinstance(type_, str) or not isinstance(version, int):
            raise ValueError("envelope needs a string 'type' and an integer 'version'")
        data_cls = registry.lookup(type_, version)
        if data_cls is None:
            raise ValueError(f"unknown event type {type_!r} version {version}")
        typed = data_cls.model_validate(data)
        # Old versions are upcast on read, so every reader sees only the current shape.
        while hasattr(typed, "upcast"):
            typed = typed.upcast()
        return {**values, "data": typed, "version": typed.VERSION}

    @property
    def subject(self) -> str:
        return event_subject(self.experiment_id, self.type)

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


def new_event(
    experiment_id: str,
    data: EventData,
    *,
    producer: str,
    cause: Envelope | None = None,
    key: str | None = None,
    time: datetime | None = None,
) -> Envelope:
    """An envelope for `data`. With `key`, the id is derived from it, so a retry is the same event."""
    event_id = uuid.uuid5(NAMESPACE, f"{experiment_id}:{key}") if key else uuid.uuid4()
    return Envelope(
        event_id=event_id,
        experiment_id=experiment_id,
        type=data.TYPE,
        version=data.VERSION,
        time=time or datetime.now(UTC),
        causation_id=cause.event_id if cause else None,
        correlation_id=(cause.correlation_id or cause.event_id) if cause else event_id,
        producer=producer,
        data=data,
    )


def decode(raw: bytes | str) -> Envelope:
    """Parse and validate a raw message; raise MalformedEvent with a readable reason."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise MalformedEvent("an event must be a JSON object")
    try:
        return Envelope.model_validate(obj)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise MalformedEvent(problems) from exc
