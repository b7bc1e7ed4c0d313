"""Several instances of one role each count: the coordinator reads every live instance's offer (the
union; a method is feasible if any live instance runs it), through a real nats-server with the
coordinator's own permissions. A role still cannot announce in another's name, nor shadow another
role's instance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from greenai.events import Envelope, new_event
from greenai.events.capabilities import AgentAnnounced, Hardware, MethodOffer, Requirements, agents_experiment
from greenai.events.experiment import Step
from greenai.projections.capabilities import fold_catalogue
from greenai.services.coordinator.catalogue import read_catalogue, window
from greenai.services.coordinator.feasibility import infeasible
from greenai.shared.auth import AuthFiles, client_options
from greenai.shared.eventstore import EventStore, PermissionDenied
from greenai.shared.nats_server import EmbeddedNats
from tests import factories as f

CPU = Hardware(host="cpu-host", device="cpu", cpus=2, memory_bytes=2**34)
GPU = Hardware(host="gpu-host", device="cuda", cpus=8, memory_bytes=2**36, gpu="H100")
BOTH = MethodOffer(kind="quantize", name="rtn", group="rtn", search=[{}], families=["llama"])
CUDA_ONLY = MethodOffer(
    kind="quantize", name="marlin", group="marlin", search=[{}], requirements=Requirements(cpu=False, cuda=True)
)


def announce(
    instance: str, hw: Hardware, methods: list[MethodOffer], at: datetime | None = None, agent: str = "quantization"
) -> Envelope:
    data = AgentAnnounced(agent=agent, instance=instance, kind="quantize", methods=methods, hardware=hw, interval_s=5)
    env = new_event(agents_experiment(agent), data, producer=instance)
    return env if at is None else env.model_copy(update={"time": at})


def test_each_instance_counts_and_a_method_needs_an_instance_that_runs_it() -> None:
    gpu_variant = BOTH.model_copy(update={"families": ["llama", "gpt2"]})
    cpu = announce("quantization@cpu", CPU, [BOTH, CUDA_ONLY])  # announces marlin, cannot run it
    gpu = announce("quantization@gpu", GPU, [gpu_variant, CUDA_ONLY])
    both = fold_catalogue([cpu, gpu]).live(gpu.time)
    assert [m.name for m in both.methods] == ["marlin", "rtn"]
    assert both.get("quantize", "rtn").families == ["gpt2", "llama"]  # type: ignore[union-attr]
    spec = f.SPEC.model_copy(update={"family": "gpt2"})
    assert infeasible((Step(kind="quantize", method="rtn"),), spec, both) is None  # the GPU host supports it
    only_cpu = fold_catalogue([cpu]).live(cpu.time)
    assert [m.name for m in only_cpu.methods] == ["rtn"]  # nobody live can run marlin: never proposed
    assert "does not support model family 'gpt2'" in (
        infeasible((Step(kind="quantize", method="rtn"),), spec, only_cpu) or ""
    )
    later = gpu.time + timedelta(seconds=16)  # the GPU host missed three beats, the CPU host did not
    fresh_cpu = cpu.model_copy(update={"time": later})
    assert [m.name for m in fold_catalogue([cpu, gpu, fresh_cpu]).live(later).methods] == ["rtn"]


def test_a_role_cannot_shadow_another_roles_instance() -> None:
    real = announce("quantization@gpu", GPU, [BOTH, CUDA_ONLY])
    squat = AgentAnnounced(
        agent="pruning", instance="quantization@gpu", kind="prune", methods=[], hardware=CPU, interval_s=5
    )
    forged = new_event(agents_experiment("pruning"), squat, producer="p").model_copy(
        update={"time": real.time + timedelta(seconds=1)}
    )
    catalogue = fold_catalogue([real, forged])
    assert catalogue.instances["quantization@gpu"].announced.agent == "quantization"
    assert [m.name for m in catalogue.live(forged.time).methods] == ["marlin", "rtn"]


def test_the_window_read_back_covers_live_instances_only() -> None:
    now = datetime.now(UTC)
    slow = announce("quantization@slow", CPU, [BOTH], at=now - timedelta(hours=2))  # interval 5 s: long dead
    assert window(fold_catalogue([slow]), now) is None  # no role is live: nothing older can be
    live = announce("quantization@gpu", GPU, [BOTH], at=now - timedelta(seconds=2))
    assert window(fold_catalogue([slow, live]), now) == timedelta(seconds=20)  # (GRACE + 1) beats of 5 s


async def test_the_coordinator_reads_every_live_instance_not_only_each_roles_newest(
    server: EmbeddedNats, auth: AuthFiles
) -> None:
    async def connect(role: str) -> EventStore:
        return await EventStore.connect(
            server.url,
            "GREENAI_EVENTS",
            name=role,
            options=client_options(auth.seed(role)),
            manage_stream=role == "admin",
        )

    admin = await connect("admin")  # creates the stream
    quantization, pruning, coordinator = (
        await connect("quantization"),
        await connect("pruning"),
        await connect("coordinator"),
    )
    try:
        assert not (await read_catalogue(coordinator)).instances  # nothing announced: an empty catalogue
        stale = BOTH.model_copy(update={"name": "stale", "group": "stale"})
        dead = announce("quantization@old", CPU, [stale], at=datetime.now(UTC) - timedelta(minutes=10))
        for env in (dead, announce("quantization@gpu", GPU, [CUDA_ONLY]), announce("quantization@cpu", CPU, [BOTH])):
            await quantization.append(env)
        prune = [m for m in f.agent_offers().methods if m.kind == "prune"][:1]
        await pruning.append(f.announced("pruning", "prune", prune))
        with pytest.raises(PermissionDenied):  # a second instance of a role still speaks only for its role
            await quantization.append(announce("quantization@x", CPU, [BOTH]).model_copy(
                update={"experiment_id": agents_experiment("pruning")}
            ))  # fmt: skip
        catalogue = await read_catalogue(coordinator)
        assert {"quantization@gpu", "quantization@cpu", "pruning@h"} <= set(catalogue.instances)
        offers = catalogue.live(datetime.now(UTC))
        # the newest announcement alone would give rtn only; the dead instance's method is gone
        assert {m.name for m in offers.of_kind("quantize")} == {"marlin", "rtn"}
        assert offers.of_kind("prune")
    finally:
        for store in (quantization, pruning, coordinator, admin):
            await store.close()
