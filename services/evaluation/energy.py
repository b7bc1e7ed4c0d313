"""Energy of a piece of work from codecarbon, labelled measured only when a hardware counter exists."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class EnergyReading:
    joules: float = 0.0
    mode: str = "estimated"
    detail: str = ""


def has_energy_counter() -> bool:
    rapl = Path("/sys/class/powercap/intel-rapl:0/energy_uj")
    if rapl.exists() and os.access(rapl, os.R_OK):
        return True
    try:
        import torch

        return bool(torch.cuda.is_available())  # NVML reports GPU energy on NVIDIA cards
    except Exception:
        return False


@contextlib.contextmanager
def track_energy(country_iso_code: str = "USA") -> Iterator[EnergyReading]:
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(os.environ.get("GREENAI_CODECARBON_LOG", "ERROR"))
    reading = EnergyReading()
    tracker = OfflineEmissionsTracker(
        country_iso_code=country_iso_code,
        save_to_file=False,
        log_level=os.environ.get("GREENAI_CODECARBON_LOG", "error").lower(),
        measure_power_secs=1,
        tracking_mode="process",
    )
    tracker.start()
    try:
        yield reading
    finally:
        tracker.stop()
        _read(tracker, reading)


def _read(tracker: Any, reading: EnergyReading) -> None:
    data = getattr(tracker, "final_emissions_data", None)
    if data is None:  # codecarbon logged its own failure and left no reading: no number, and say so
        reading.mode, reading.detail = "unavailable", "codecarbon produced no reading (its log says why)"
        return
    kwh = float(getattr(data, "energy_consumed", 0.0) or 0.0)
    reading.joules = kwh * 3.6e6
    measured = has_energy_counter()
    reading.mode = "measured" if measured else "estimated"
    reading.detail = (
        f"codecarbon: cpu {getattr(data, 'cpu_power', 0):.1f} W, ram {getattr(data, 'ram_power', 0):.1f} W; "
        + (
            "hardware energy counters (RAPL/NVML)"
            if measured
            else "no RAPL or NVML here: CPU power estimated from TDP and load"
        )
    )
