"""The envelope every event travels in, and strict decoding of raw messages."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    StringConstraints,
    ValidationError,
    create_model,
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
        typed = _current(data_cls.model_validate(data))
        return {**values, "data": typed, "version": typed.VERSION}

    @property
    def subject(self) -> str:
        return event_subject(self.experiment_id, self.type)

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


def _current(data: EventData) -> EventData:
    """Old versions are upcast on read, so every reader sees only the current shape. (Asked of the
    class: a missing attribute on a pydantic instance costs a caught exception per event.)"""
    while hasattr(type(data), "upcast"):
        data = data.upcast()  # type: ignore[attr-defined]
    return data


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
    """Parse and validate a raw message; raise MalformedEvent with a readable reason.

    Replays decode every event of the log, so a message of a registered type is first validated in
    one pass from bytes (`_decode_fast`); anything that pass refuses goes the general way, which
    alone decides what is malformed and why."""
    fast = _decode_fast(raw)
    return fast if fast is not None else decode_general(raw)


def decode_general(raw: bytes | str) -> Envelope:
    """The reference decoder: JSON, then the envelope, then its data by (type, version)."""
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


# --- the replay fast path --------------------------------------------------------------------
# The envelope's fields as they appear in a message; the strict models below put `type` and
# `version` first only in the order the encoder writes them, so a message ordered otherwise, or
# with a nested "type" before the envelope's, merely misses the fast path.
_PEEK_TYPE = re.compile(rb'"type"\s*:\s*"([^"\\]{1,128})"')
_PEEK_VERSION = re.compile(rb'"version"\s*:\s*([0-9]{1,9})')
_STRICT: dict[tuple[str, int], type[BaseModel]] = {}
_STRICT_MAX = 512  # distinct (type, version) kept; a log naming more still decodes, the general way


def _strict_envelope(key: tuple[str, int]) -> type[BaseModel] | None:
    """An envelope model whose `type` and `version` are these literals and whose `data` is that
    event's class: validated straight from JSON bytes by pydantic-core, no Python dict on the way.
    Only exactly registered classes: a family's class could later be replaced by a registration."""
    model = _STRICT.get(key)
    if model is not None or len(_STRICT) >= _STRICT_MAX:
        return model
    data_cls = registry.event_types().get(key)
    if data_cls is None:
        return None
    fields: dict[str, Any] = {name: (f.annotation, f) for name, f in Envelope.model_fields.items()}
    fields["type"] = (Literal[key[0]], ...)  # a JSON string, nothing else, equal to it
    fields["version"] = (int, Field(strict=True, ge=key[1], le=key[1]))  # an integer: not 1.0, "1" or true
    fields["data"] = (data_cls, ...)
    model = create_model(f"Envelope_{key[0].replace('.', '_')}_v{key[1]}", __config__=Envelope.model_config, **fields)
    _STRICT[key] = model
    return model


def _decode_fast(raw: bytes | str) -> Envelope | None:
    """The envelope, if the strict model of the (type, version) the message seems to carry accepts
    it whole; None otherwise (and the general decoder decides). Accepting means the message's own
    top-level type and version are those literals, so the general path would have chosen the same
    class and given an equal envelope, with the same fields set."""
    data = raw.encode() if isinstance(raw, str) else raw
    type_match, version_match = _PEEK_TYPE.search(data), _PEEK_VERSION.search(data)
    if type_match is None or version_match is None:
        return None
    try:
        model = _strict_envelope((type_match.group(1).decode(), int(version_match.group(1))))
        if model is None:
            return None
        checked = model.model_validate_json(data)
        values = dict(checked.__dict__)
        typed = _current(values["data"])
    except Exception:  # whatever it is, the general decoder meets it again and says what
        return None
    values["data"], values["version"] = typed, typed.VERSION
    # What `Envelope.model_construct` does, minus its per-field loop (half the cost of this path):
    # the values are already validated and complete.
    envelope = Envelope.__new__(Envelope)
    object.__setattr__(envelope, "__dict__", values)
    object.__setattr__(envelope, "__pydantic_fields_set__", set(checked.model_fields_set))
    object.__setattr__(envelope, "__pydantic_extra__", None)
    object.__setattr__(envelope, "__pydantic_private__", None)
    return envelope
