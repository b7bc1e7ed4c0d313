"""Finding the NATS server: the configured one, an embedded one already running here, or a new one."""

from __future__ import annotations

from dataclasses import dataclass

from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats, running_embedded_url, start_nats_server


@dataclass
class Bus:
    url: str
    embedded: EmbeddedNats | None  # set when this process started the server and must stop it

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def ensure_nats(settings: Settings, *, start: bool = True) -> Bus:
    if settings.nats_url:
        return Bus(settings.nats_url, None)
    url = running_embedded_url(settings.nats_dir)
    if url:
        return Bus(url, None)
    if not start:
        raise RuntimeError(
            f"no NATS server: set GREENAI_NATS_URL, or start one with `greenai up` (work dir {settings.work_dir})"
        )
    server = start_nats_server(settings.nats_dir)
    return Bus(server.url, server)


async def open_store(settings: Settings, url: str, name: str) -> EventStore:
    return await EventStore.connect(url, settings.stream, settings.duplicate_window_s, name=name)
