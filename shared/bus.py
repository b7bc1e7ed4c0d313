"""Finding the NATS server (the configured one, an embedded one already running here, or a new one)
and connecting to it under a role's identity."""

from __future__ import annotations

from dataclasses import dataclass

from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.auth import client_options, credentials_for, init_auth
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore, StreamLimits
from greenai.shared.host_lease import ensure_hosts_bucket
from greenai.shared.nats_server import EmbeddedNats, running_embedded_url, start_nats_server
from greenai.shared.projection_snapshot import DASHBOARD_BUCKET, ensure_projection_bucket


@dataclass
class Bus:
    url: str
    embedded: EmbeddedNats | None  # set when this process started the server and must stop it

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def ensure_nats(settings: Settings, *, start: bool = True) -> Bus:
    """The configured server, or an embedded one on this work dir — started with authentication on:
    `greenai auth init` runs first (idempotent) and the server knows only the roles' public keys."""
    if settings.nats_url:
        return Bus(settings.nats_url, None)
    url = running_embedded_url(settings.nats_dir)
    if url:
        return Bus(url, None)
    if not start:
        raise RuntimeError(
            f"no NATS server: set GREENAI_NATS_URL, or start one with `greenai up` (work dir {settings.work_dir})"
        )
    files = init_auth(settings.auth_path, stream=settings.stream, bucket=settings.artifact_bucket)
    server = start_nats_server(settings.nats_dir, auth_conf=files.server_conf)
    return Bus(server.url, server)


def stream_limits(settings: Settings) -> StreamLimits:
    return StreamLimits(
        max_msg_bytes=settings.stream_max_msg_bytes,
        max_bytes=settings.stream_max_bytes,
        max_age_s=settings.stream_max_age_s,
        replicas=settings.replicas,
    )


async def open_store(
    settings: Settings, url: str, name: str, role: str = "viewer", wait_for_stream_s: float | None = None
) -> EventStore:
    """Connect as `role`: with the credentials file given in the settings (an agent's own), else the
    role's seed in the auth dir, else without credentials (a server without authentication). Only
    `admin`, or anyone on a server without authentication, creates or reconciles the stream; the others
    wait for it (`wait_for_stream_s`, default the outage budget)."""
    creds = settings.credentials or credentials_for(settings.auth_path, role)
    return await EventStore.connect(
        url,
        settings.stream,
        settings.duplicate_window_s,
        name=name,
        options=client_options(creds, settings.tls_ca),
        manage_stream=creds is None or creds.name == "admin.nk",
        max_event_bytes=settings.max_event_bytes,
        limits=stream_limits(settings),
        outage_budget_s=settings.outage_budget_s,
        wait_for_stream_s=wait_for_stream_s,
    )


async def ensure_log(settings: Settings, url: str) -> None:
    """Create or reconcile the stream, the artifact bucket, the host-lease bucket and the projection
    snapshots' bucket as admin (where this machine has the admin seed)."""
    store = await open_store(settings.model_copy(update={"credentials": None}), url, "greenai-admin", "admin")
    try:
        s = settings
        await ArtifactStore(store.js, s.artifact_bucket, s.artifact_cache_dir, replicas=s.replicas).ensure_bucket()
        await ensure_hosts_bucket(store.js, s.replicas)
        await ensure_projection_bucket(store.js, s.replicas)
        await ensure_projection_bucket(store.js, s.replicas, DASHBOARD_BUCKET)
    finally:
        await store.close()
