"""The shared energy meter: codecarbon's constants when no counter exists, RAPL counters read from real
files (malformed, forged, wrapped), the per-user cache of the constants, a job child's reading, and the
events that carry energy (step completions v3, the latency's energy in evaluate.completed v3)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from greenai.events import decode
from greenai.events.results import Energy, EvaluateCompleted, Latency, StepCompleted
from greenai.shared import energy as en
from greenai.shared.jobs import run_in_child
from tests import factories as f

MODEL = en.PowerModel(cpu="Test CPU", cpu_tdp_w=8.0, cpu_count=2)


def snap(wall: float, cpu_s: float, rapl: dict[str, tuple[int, int]] | None = None) -> en.Snapshot:
    return en.Snapshot(wall, cpu_s, rapl or {}, {})


def test_without_counters_the_estimate_is_codecarbons_process_mode() -> None:
    # 4 W per busy CPU (8 W TDP over 2 CPUs) x 3 CPU-s + codecarbon's 10 W RAM (two DIMMs) x 5 s
    r = en.reading(snap(0.0, 1.0), snap(5.0, 4.0), MODEL, rss_gb=1.0)
    assert r.joules == pytest.approx(4.0 * 3 + 10.0 * 5)
    assert (r.mode, r.seconds) == ("estimated", 5.0)
    assert "estimated" in r.detail and "no RAPL or NVML" in r.detail


def test_a_rapl_counter_measures_the_cpu_and_a_wrap_is_unwrapped() -> None:
    start = snap(0.0, 0.0, {"intel-rapl:0": (1_000_000, 10_000_000)})
    r = en.reading(start, snap(2.0, 2.0, {"intel-rapl:0": (4_000_000, 10_000_000)}), MODEL, rss_gb=1.0)
    assert r.joules == pytest.approx(3.0 + 10.0 * 2) and r.mode == "measured"
    assert "RAPL" in r.detail and "RAM estimated" in r.detail
    wrapped = en.reading(start, snap(2.0, 2.0, {"intel-rapl:0": (500_000, 10_000_000)}), MODEL, rss_gb=1.0)
    assert wrapped.joules == pytest.approx(9.5 + 20.0)


def zone(root: Path, name: str, energy: str, span: str | None = "10000000") -> None:
    (root / name).mkdir(parents=True)
    (root / name / "energy_uj").write_text(energy)
    if span is not None:
        (root / name / "max_energy_range_uj").write_text(span)


def test_rapl_files_that_cannot_be_trusted_are_no_counter(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "123\n")
    zone(tmp_path, "intel-rapl:0:0", "5")  # a sub-zone: inside the package figure
    zone(tmp_path, "intel-rapl:1", "not a number")
    zone(tmp_path, "intel-rapl:2", "-7")
    zone(tmp_path, "intel-rapl:3", "99999999999")  # beyond its own range
    zone(tmp_path, "intel-rapl:4", "5", span=None)
    zone(tmp_path, "intel-rapl:5", "1" * 100_000)  # oversized
    assert en.rapl_counters(tmp_path) == {"intel-rapl:0": (123, 10_000_000)}
    assert en.rapl_counters(tmp_path / "absent") == {}
    assert en.has_energy_counter(tmp_path) is True


def test_track_energy_reads_a_block(tmp_path: Path) -> None:
    with en.track_energy(MODEL, powercap=tmp_path) as r:
        sum(i * i for i in range(200_000))
    assert r.seconds > 0 and r.joules > 0
    assert r.mode == ("measured" if en._nvml_handles() else "estimated")
    assert Energy(**r.as_event()).seconds == pytest.approx(r.seconds, abs=1e-3)


def test_the_cached_constants_are_used_and_a_forged_cache_is_not(tmp_path: Path) -> None:
    key = en._machine_key()
    cache = tmp_path / "power-model.json"
    cache.write_text(json.dumps({"key": key, "cpu": "Cached", "cpu_tdp_w": 12.0, "cpu_count": 3}))
    assert en._cached(cache, key) == en.PowerModel("Cached", 12.0, 3)
    assert en.power_model(cache) == en.PowerModel("Cached", 12.0, 3)  # no codecarbon look-up
    en.power_model.cache_clear()
    for bad in (
        {"key": "another machine", "cpu": "X", "cpu_tdp_w": 12.0, "cpu_count": 3},
        {"key": key, "cpu": "X", "cpu_tdp_w": -1, "cpu_count": 3},
        {"key": key, "cpu": "X", "cpu_tdp_w": 1e12, "cpu_count": 3},
        {"key": key, "cpu": "X", "cpu_tdp_w": "lots", "cpu_count": 3},
        {"key": key, "cpu": "X"},
        [1, 2],
    ):
        cache.write_text(json.dumps(bad))
        assert en._cached(cache, key) is None, bad
    cache.write_text("{truncated")
    assert en._cached(cache, key) is None
    assert en._cached(tmp_path / "absent.json", key) is None


def _work() -> int:
    return sum(i * i for i in range(100_000))


def test_a_job_child_reports_its_energy_with_the_agents_constants() -> None:
    measured = asyncio.run(run_in_child(_work, hold=False))
    assert measured.value == _work()
    e = measured.energy
    assert e is not None and e.joules > 0 and e.seconds > 0
    assert e.mode in ("estimated", "measured")


def test_an_old_step_completion_reads_as_v3_with_energy_not_recorded() -> None:
    raw = json.loads(f.quantized("e", 1).encode())
    assert raw["version"] == StepCompleted.VERSION == 3
    raw["version"] = 2
    del raw["data"]["energy"]
    assert decode(json.dumps(raw)).data.energy is None  # type: ignore[attr-defined]
    raw["type"] = "distill.completed"  # a kind with no class of its own
    env = decode(json.dumps(raw))
    assert (env.type, env.version, env.data.energy) == ("distill.completed", 3, None)  # type: ignore[attr-defined]
    raw["data"]["energy"] = {"joules": 1.0, "mode": "estimated", "detail": ""}  # v2 never had it: forged
    with pytest.raises(ValueError, match="energy"):
        decode(json.dumps(raw))


def test_an_old_evaluation_reads_as_v3_and_bad_energy_is_refused() -> None:
    raw = json.loads(f.evaluated("e", 1, 0.5, 10, 10, 10).encode())
    assert raw["version"] == EvaluateCompleted.VERSION
    raw["version"] = 2
    env = decode(json.dumps(raw))
    assert env.version == EvaluateCompleted.VERSION and env.data.latency.energy is None  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        Energy(joules=1.0, mode="estimated", detail="", seconds=-1.0)
    with pytest.raises(ValidationError):
        Energy(joules=1.0, mode="guessed", detail="")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Latency.model_validate(
            {"prefill_ms_per_token": 1, "decode_ms_per_token": 1, "decode_tokens_per_s": 1, "device": "cpu",
             "energy": {"joules": 1, "mode": "estimated", "detail": "", "watts": 5}}
        )  # fmt: skip


def test_a_step_completion_carries_its_childs_energy() -> None:
    from greenai.events.results import QuantizeCompleted
    from greenai.shared.artifacts import StepOutput, Written, step_completed
    from greenai.shared.jobs import Measured

    job = f.step_requested("e", 1).data
    out = StepOutput(Written(bytes=10, weight_bytes=8, sha256="0" * 64), {"bits": 4})
    reading = en.EnergyReading(joules=12.5, mode="estimated", detail="d", seconds=3.0)
    done = step_completed(QuantizeCompleted, job, f.artifact("x"), Measured(out, 3.0, 1.0, reading), 16)  # type: ignore[arg-type]
    assert done.energy == Energy(joules=12.5, mode="estimated", detail="d", seconds=3.0)
    unmeasured = step_completed(QuantizeCompleted, job, f.artifact("x"), Measured(out, 3.0, 1.0), 16)  # type: ignore[arg-type]
    assert unmeasured.energy is None  # not measured is not zero
