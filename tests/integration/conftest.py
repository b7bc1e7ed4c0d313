"""Fixtures for tests that run agents as OS processes: a nats-server of their own and its log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats, start_nats_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    s = start_nats_server(tmp_path / "nats", publish_endpoint=False)
    yield s
    s.stop()


@pytest.fixture
async def log(server: EmbeddedNats) -> AsyncIterator[EventStore]:
    store = await EventStore.connect(server.url, "GREENAI_EVENTS")
    yield store
    await store.close()
