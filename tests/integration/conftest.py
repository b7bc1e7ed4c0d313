"""Fixtures for tests that run agents as OS processes: the log of the auth-on server (tests/conftest.py),
read and written as admin, with the artifact bucket made."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.auth import AuthFiles, client_options
from greenai.shared.eventstore import EventStore
from greenai.shared.host_lease import ensure_hosts_bucket
from greenai.shared.nats_server import EmbeddedNats


@pytest.fixture
async def log(server: EmbeddedNats, auth: AuthFiles) -> AsyncIterator[EventStore]:
    store = await EventStore.connect(server.url, "GREENAI_EVENTS", options=client_options(auth.seed("admin")))
    await ArtifactStore(store.js, "greenai-artifacts", server.store_dir / "admin-cache").ensure_bucket()
    await ensure_hosts_bucket(store.js)
    yield store
    await store.close()
