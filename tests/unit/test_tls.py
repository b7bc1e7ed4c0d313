"""Between machines NATS speaks TLS: a TLS-only server refuses a plain client and accepts one that
verifies it against the CA; an unknown CA is refused too."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest

from greenai.shared.auth import client_options, init_auth
from greenai.shared.nats_server import start_nats_server
from greenai.shared.tls import client_tls_block, make_ca, route_tls_block


async def test_a_tls_server_takes_only_clients_that_verify_it(tmp_path: Path) -> None:
    files = make_ca(tmp_path / "tls")
    assert files.key.stat().st_mode & 0o077 == 0
    auth = init_auth(tmp_path / "auth")
    server = start_nats_server(
        tmp_path / "nats", publish_endpoint=False, auth_conf=auth.server_conf, extra_config=client_tls_block(files)
    )
    try:
        url = server.url.replace("nats://", "tls://")
        creds = client_options(auth.seed("viewer"))
        with pytest.raises(Exception):  # noqa: B017 - no TLS: refused
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, **creds)
        stranger = make_ca(tmp_path / "other")  # a certificate from another CA does not verify
        with pytest.raises(Exception):  # noqa: B017
            await nats.connect(
                url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2,
                **client_options(auth.seed("viewer"), stranger.ca),
            )  # fmt: skip
        nc = await nats.connect(
            url, allow_reconnect=False, connect_timeout=5, **client_options(auth.seed("viewer"), files.ca)
        )
        assert nc.is_connected
        await nc.close()
    finally:
        server.stop()
    assert "verify: true" in route_tls_block(files)
