"""Energy of a piece of work: hardware counters where they exist (`measured`), else codecarbon's own
power constants times the work's CPU seconds and wall time (`estimated`).

Counters: RAPL for the CPU package (`/sys/class/powercap`), NVML for NVIDIA GPUs. Both count the
whole package or device, not one process: the detail says so. RAM is never counted here; it is
always codecarbon's RAM figure (5 W a DIMM, at least two) times the wall time.

Why not a codecarbon tracker per job: starting one took 3.5 s on a quiet moment here (~9 s loaded),
3.3 s of it its look-up of the CPU in its TDP table — more than many jobs. The constants are looked up
once per machine (`power_model`, kept in ~/.cache/greenai; a reading then costs 0.1 ms) and handed to
each job's child (`use_power_model`). Without counters
the estimate is what codecarbon's process-mode tracker computes: TDP / logical CPUs for every busy
CPU-second of the process and its children, plus its RAM power for the wall time. Every job and
evaluation uses this one estimator, so figures on both sides of a comparison are alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POWERCAP = Path("/sys/class/powercap")
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class PowerModel:
    """codecarbon's constants for this machine (picklable: the agent hands it to its job children)."""

    cpu: str
    cpu_tdp_w: float
    cpu_count: int

    @property
    def watts_per_cpu(self) -> float:
        """Power of one fully busy logical CPU: codecarbon's process mode, TDP x load / CPUs."""
        return self.cpu_tdp_w / max(self.cpu_count, 1)

    def ram_watts(self, rss_gb: float) -> float:
        """codecarbon's RAM model for a process of this size (DIMMs guessed from the size)."""
        from codecarbon.external.ram import RAM

        ram = RAM(tracking_mode="process")
        return float(ram._calculate_ram_power(rss_gb))


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "greenai" / "power-model.json"


def _machine_key() -> str:
    """What codecarbon's answer depends on: the CPU's name, the CPUs, codecarbon's version."""
    from importlib.metadata import version

    name = ""
    with contextlib.suppress(OSError):
        name = next((ln.split(":", 1)[1].strip() for ln in CPUINFO.read_text().splitlines() if ":" in ln
                     and ln.startswith("model name")), "")  # fmt: skip
    return json.dumps([name, os.cpu_count(), version("codecarbon")])


def _cached(path: Path, key: str) -> PowerModel | None:
    """The model saved for this machine; anything else in the file (another machine, a hand-edited or
    truncated file) is ignored and the look-up redone."""
    try:
        raw = json.loads(path.read_text())
        model = PowerModel(cpu=str(raw["cpu"]), cpu_tdp_w=float(raw["cpu_tdp_w"]), cpu_count=int(raw["cpu_count"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if raw.get("key") != key or not (0 < model.cpu_tdp_w < 10_000 and 0 < model.cpu_count < 100_000):
        return None
    return model


@functools.lru_cache(maxsize=1)
def power_model(cache: Path | None = None) -> PowerModel:
    """codecarbon's TDP for this CPU (its table, else its default of 4 W a thread, else 85 W). Its
    look-up takes 3-4 s, so the answer is kept for the process and in a per-user cache file."""
    path = cache or _cache_file()
    key = _machine_key()
    found = _cached(path, key)
    if found is not None:
        return found
    from codecarbon.core.cpu import TDP
    from codecarbon.core.util import count_cpus
    from codecarbon.external.hardware import POWER_CONSTANT

    logging.getLogger("codecarbon").setLevel(os.environ.get("GREENAI_CODECARBON_LOG", "ERROR"))
    tdp = TDP()
    model = PowerModel(cpu=str(tdp.model), cpu_tdp_w=float(tdp.tdp or POWER_CONSTANT), cpu_count=count_cpus() or 1)
    with contextlib.suppress(OSError):  # no cache: the next process looks it up again, nothing worse
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"key": key, **dataclasses.asdict(model)}))
        tmp.replace(path)
    return model


_SEEDED: PowerModel | None = None


def use_power_model(model: PowerModel) -> None:
    """Take the agent's constants in a job's child, so its readings need no look-up of their own."""
    global _SEEDED
    _SEEDED = model


def current_power_model() -> PowerModel:
    return _SEEDED if _SEEDED is not None else power_model()


def rapl_counters(root: Path = POWERCAP) -> dict[str, tuple[int, int]]:
    """Package energy counters in µJ with their wrap-around range; unreadable or malformed ones are
    left out (a counter we cannot trust is no counter)."""
    found: dict[str, tuple[int, int]] = {}
    if not root.is_dir():
        return found
    for zone in sorted(root.glob("intel-rapl:*")):
        if zone.name.count(":") != 1:  # sub-zones (core, dram) are inside the package figure or not RAM
            continue
        try:
            value = int((zone / "energy_uj").read_text().strip())
            span = int((zone / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError):
            continue
        if 0 <= value <= span and span > 0:
            found[zone.name] = (value, span)
    return found


@functools.lru_cache(maxsize=1)
def _nvml_handles() -> tuple[Any, ...]:
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = tuple(pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount()))
        for h in handles:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(h)  # Volta and later; older cards have no counter
        return handles
    except Exception:  # no driver, no GPU, or no energy counter: nothing measured, the estimate stands
        return ()


def nvml_counters() -> dict[int, int]:
    """GPU energy since the driver loaded, in mJ, per device."""
    import pynvml

    out: dict[int, int] = {}
    for i, handle in enumerate(_nvml_handles()):
        with contextlib.suppress(Exception):
            out[i] = int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    return out


def _cpu_seconds() -> float:
    """CPU time of this process and the children it waited for (what codecarbon sums in process mode)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


@dataclass(frozen=True)
class Snapshot:
    wall: float
    cpu_s: float
    rapl_uj: dict[str, tuple[int, int]] = field(default_factory=dict)
    nvml_mj: dict[int, int] = field(default_factory=dict)


def snapshot(powercap: Path = POWERCAP) -> Snapshot:
    return Snapshot(time.perf_counter(), _cpu_seconds(), rapl_counters(powercap), nvml_counters())


@dataclass
class EnergyReading:
    """Joules with how they were obtained; `detail` names every part and whether it was counted."""

    joules: float = 0.0
    mode: str = "estimated"
    detail: str = ""
    seconds: float = 0.0

    def as_event(self) -> dict[str, Any]:
        """The fields of `events.results.Energy`."""
        return {
            "joules": round(self.joules, 3),
            "mode": self.mode,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
        }


def rapl_joules(start: dict[str, tuple[int, int]], end: dict[str, tuple[int, int]]) -> float | None:
    """Energy between two RAPL readings (a counter that wrapped once is unwrapped); None: none to compare."""
    total, seen = 0, False
    for zone, (value, span) in end.items():
        if zone not in start:
            continue
        delta = value - start[zone][0]
        total += delta if delta >= 0 else delta + span
        seen = True
    return total / 1e6 if seen else None


def reading(start: Snapshot, end: Snapshot, model: PowerModel, rss_gb: float) -> EnergyReading:
    """The energy between two snapshots. Pure: the same snapshots and model give the same reading."""
    seconds = max(end.wall - start.wall, 0.0)
    cpu_s = max(end.cpu_s - start.cpu_s, 0.0)
    ram_w = model.ram_watts(rss_gb)
    parts: list[str] = []
    joules = ram_w * seconds
    ram = f"RAM estimated {ram_w:g} W x {seconds:.1f} s (codecarbon)"
    cpu_j = rapl_joules(start.rapl_uj, end.rapl_uj)
    measured = cpu_j is not None
    if cpu_j is not None:
        parts.append(f"CPU {cpu_j:.1f} J by RAPL (whole package, not this process alone)")
    else:
        cpu_j = model.watts_per_cpu * cpu_s
        parts.append(
            f"CPU estimated {model.watts_per_cpu:.2f} W per busy CPU x {cpu_s:.1f} CPU-s "
            f"(codecarbon: {model.cpu}, TDP {model.cpu_tdp_w:g} W over {model.cpu_count} CPUs)"
        )
    joules += cpu_j
    gpu = [(i, (end.nvml_mj[i] - mj) / 1000) for i, mj in start.nvml_mj.items() if end.nvml_mj.get(i, -1) >= mj]
    for i, j in gpu:
        joules += j
        parts.append(f"GPU {i} {j:.1f} J by NVML (whole device)")
    measured = measured or bool(gpu)
    head = "measured" if measured else "estimated (no RAPL or NVML counter here)"
    return EnergyReading(
        joules, "measured" if measured else "estimated", f"{head}: " + "; ".join([*parts, ram]), seconds
    )


@contextlib.contextmanager
def track_energy(model: PowerModel | None = None, powercap: Path = POWERCAP) -> Iterator[EnergyReading]:
    """Energy of the block, filled in when it ends (also when it raises)."""
    model = model or current_power_model()
    result = EnergyReading()
    start = snapshot(powercap)
    try:
        yield result
    finally:
        done = reading(start, snapshot(powercap), model, _peak_rss_gb())
        result.joules, result.mode, result.detail, result.seconds = done.joules, done.mode, done.detail, done.seconds


def has_energy_counter(powercap: Path = POWERCAP) -> bool:
    """Whether a hardware counter measures energy here (RAPL or NVML)."""
    return bool(rapl_counters(powercap)) or bool(_nvml_handles())
