"""Fixtures for tests that run agents as OS processes: an auth-on nats-server of their own, its log
(read and written as admin), and every agent under its own NATS identity."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.auth import AuthFiles, client_options, init_auth
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats, start_nats_server


@pytest.fixture
def auth(tmp_path: Path) -> AuthFiles:
    return init_auth(tmp_path / "auth")


@pytest.fixture
def server(tmp_path: Path, auth: AuthFiles) -> Iterator[EmbeddedNats]:
    s = start_nats_server(tmp_path / "nats", publish_endpoint=False, auth_conf=auth.server_conf)
    yield s
    s.stop()


@pytest.fixture
async def log(server: EmbeddedNats, auth: AuthFiles) -> AsyncIterator[EventStore]:
    store = await EventStore.connect(server.url, "GREENAI_EVENTS", options=client_options(auth.seed("admin")))
    await ArtifactStore(store.js, "greenai-artifacts", server.store_dir / "admin-cache").ensure_bucket()
    yield store
    await store.close()
