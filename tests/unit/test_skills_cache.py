"""The coordinator's kept skill memory equals a full fold of the log after every catch-up, reads only
what is new, skips what is malformed, and refolds when the stream was recreated under it."""

from __future__ import annotations

import asyncio

from greenai.events import Envelope
from greenai.events.subjects import event_subject
from greenai.projections.skills import SkillFold, skill_memory
from greenai.services.coordinator.skills_cache import SkillsCache
from greenai.shared.eventstore import EventStore
from tests import factories as f


def experiment(exp: str, acc: float) -> list[Envelope]:
    out = [f.run(exp), f.spec(exp), f.evaluated(exp, 0, 0.6, 20.0, 100.0, 4000)]
    for n in (1, 2):
        out += [f.decided(exp, n, params={"bits": 2 + 2 * n}), f.step_requested(exp, n)]
    out += [f.evaluated(exp, 1, acc, 15.0, 80.0, 1000), f.failed(exp, f"{exp}-ep2-s0-quantize", 2)]
    return out


async def full_fold(store: EventStore) -> object:
    return skill_memory([e.envelope async for e in store.read_everything()])


async def test_caught_up_memory_equals_a_full_fold_and_reads_only_what_is_new(store: EventStore) -> None:
    cache = SkillsCache(store)
    assert (await cache.memory()).skills == []
    first = experiment("a", 0.5)
    for env in first:
        await store.append(env)
    assert await cache.memory() == await full_fold(store)
    assert cache.applied == len(first)
    second = experiment("b", 0.3)
    for env in second:
        await store.append(env)
    memory = await cache.memory()
    assert memory == await full_fold(store)
    assert cache.applied == len(first) + len(second)  # the first experiment was not read again
    assert await cache.memory() == memory and cache.applied == len(first) + len(second)
    trials = {(s.params["bits"], s.trials, s.failures) for s in memory.skills}
    assert trials == {(4, 2, 0), (6, 2, 2)}


async def test_malformed_messages_are_skipped_and_not_reread_forever(store: EventStore) -> None:
    for env in experiment("a", 0.5):
        await store.append(env)
    await store.js.publish(event_subject("a", "evaluate.completed"), b'{"forged": true', stream=store.stream)
    await store.append(f.evaluated("a", 3, 0.2, 10.0, 50.0, 500))
    cache = SkillsCache(store)
    assert await cache.memory() == await full_fold(store)
    info = await store.js.stream_info(store.stream)
    assert cache.last_seq == info.state.last_seq


async def test_concurrent_decisions_catch_up_once(store: EventStore) -> None:
    events = experiment("a", 0.5) + experiment("b", 0.4)
    for env in events:
        await store.append(env)
    cache = SkillsCache(store)
    results = await asyncio.gather(*(cache.memory() for _ in range(4)))
    assert all(r == results[0] for r in results)
    assert cache.applied == len(events)


async def test_a_recreated_stream_is_refolded_from_its_start(store: EventStore) -> None:
    for env in experiment("a", 0.5) + experiment("b", 0.4):
        await store.append(env)
    cache = SkillsCache(store)
    await cache.memory()
    config = (await store.js.stream_info(store.stream)).config
    await store.js.delete_stream(store.stream)
    await store.js.add_stream(config)
    for env in experiment("c", 0.1):
        await store.append(env)
    memory = await cache.memory()
    assert memory == await full_fold(store)
    assert [s.mean_accuracy_retained for s in memory.skills] == [round(0.1 / 0.6, 6), None]


def test_the_fold_applied_in_pieces_equals_the_fold_of_the_whole() -> None:
    log = experiment("a", 0.5) + experiment("b", 0.3) + [f.evaluated("c", 1, 0.4, 9.0, 10.0, 100)]
    fold = SkillFold()
    for i, env in enumerate(log):
        fold.apply(env)
        assert fold.memory() == skill_memory(log[: i + 1])
