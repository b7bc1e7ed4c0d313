"""The event stream's settings, and reconciling an existing stream onto them.

A stream created by an older version (or by hand) may have a 2-minute duplicate window or no
message size limit; every start as admin brings it to the configured settings. What the server
cannot change in place (storage, retention; replicas beyond the cluster's size) is refused with
`StreamMismatch` naming the setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError, ServerError

from greenai.events.subjects import all_events


@dataclass(frozen=True)
class StreamLimits:
    """What the stream holds at most; reconciled onto an existing stream at start."""

    max_msg_bytes: int = 512 * 1024
    max_bytes: int | None = None
    max_age_s: float | None = None
    replicas: int = 1


class StreamMismatch(RuntimeError):
    """The stream exists with a setting the server will not change (e.g. storage type, or replicas
    beyond the cluster's size); the message names it."""


def stream_config(name: str, duplicate_window_s: float, limits: StreamLimits) -> api.StreamConfig:
    return api.StreamConfig(
        name=name,
        subjects=[all_events()],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        duplicate_window=duplicate_window_s,
        allow_direct=True,
        max_msg_size=limits.max_msg_bytes,
        max_bytes=limits.max_bytes if limits.max_bytes is not None else -1,
        max_age=limits.max_age_s if limits.max_age_s is not None else 0,
        num_replicas=limits.replicas,
    )


async def reconcile_stream(js: JetStreamContext, config: api.StreamConfig) -> None:
    """Create the stream, or change an existing one's settings to `config`."""
    stream = config.name
    assert stream is not None, "a stream config names its stream"
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except (BadRequestError, ServerError) as exc:  # "already in use": created by another process
            if "already in use" not in str(exc.description):
                raise StreamMismatch(f"cannot create stream {stream}: {exc.description}") from exc
        info = await js.stream_info(stream)
    have = info.config
    fixed = {"storage": (have.storage, config.storage), "retention": (have.retention, config.retention)}
    for setting, (current, wanted) in fixed.items():
        if current is not None and current != wanted:
            raise StreamMismatch(
                f"stream {stream} has {setting} {getattr(current, 'value', current)}; we need "
                f"{getattr(wanted, 'value', wanted)}, which the server cannot change in place: "
                "move the events to a new stream (greenai export / import) or delete this one"
            )
    wanted_t = (config.duplicate_window, config.max_msg_size, config.max_bytes, config.max_age, config.num_replicas)
    current_t = (have.duplicate_window, have.max_msg_size, have.max_bytes, have.max_age, have.num_replicas)
    if wanted_t != current_t or sorted(have.subjects or []) != sorted(config.subjects or []):
        try:
            await js.update_stream(config)
        except (BadRequestError, NotFoundError, ServerError) as exc:
            raise StreamMismatch(
                f"stream {stream} exists with settings that cannot be changed to ours "
                f"(replicas {have.num_replicas}->{config.num_replicas}, duplicate window "
                f"{have.duplicate_window}->{config.duplicate_window} s, max_msg_size "
                f"{have.max_msg_size}->{config.max_msg_size}): {exc.description}"
            ) from exc
