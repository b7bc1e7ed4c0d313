"""The benchmarks still run: each new bench has a smoke mode (seconds, tiny inputs) run here, so a
schema or API change breaks a test instead of a figure in bench/RESULTS.md months later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_bench(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / script), "--smoke", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO,
    )  # fmt: skip


def on_tiny_model(model: Path, data_dir: Path, work: Path) -> list[str]:
    return ["--model", str(model), "--data-dir", str(data_dir), "--work-dir", str(work)]


@pytest.mark.slow
def test_artifact_store_bench_smoke() -> None:
    result = run_bench("artifact_store.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| smoke" in result.stdout and "get / cp" in result.stdout


@pytest.mark.slow
def test_hostile_bench_smoke(data_dir: Path) -> None:
    result = run_bench("hostile.py", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| 0 " in result.stdout  # no agent crashed


def test_event_log_bench_smoke() -> None:
    result = run_bench("event_log.py", timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "replay (decode + validate)" in result.stdout and "rebuild both from the log" in result.stdout
    assert "kept (SkillsCache)" in result.stdout and "from its snapshot + tail" in result.stdout


def test_search_efficiency_bench_smoke() -> None:
    # with the llm row replayed from its recording (bench/search_llm.py; no server): a few seconds more
    recorded = REPO / "bench" / "landscape" / "llm_answers_smollm2.jsonl"
    result = run_bench("search_efficiency.py", "--llm-recorded", str(recorded), timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "best policy:" in result.stdout and "the llm policy's answers" in result.stdout


@pytest.mark.slow
def test_eval_throughput_bench_smoke(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    result = run_bench("eval_throughput.py", *on_tiny_model(tiny_model_dir, data_dir, tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ratio, scoring only" in result.stdout


@pytest.mark.slow
def test_benchmarks_smollm2_bench_smoke(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    result = run_bench("benchmarks_smollm2.py", *on_tiny_model(tiny_model_dir, data_dir, tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "gsm8k:" in result.stdout and "wikitext2 (secondary)" in result.stdout


@pytest.mark.slow
def test_compression_quality_bench_smoke(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    before = (REPO / "bench" / "RESULTS.md").read_text()
    # five child processes (two settings, three steps, each measured apart): minutes on 2 busy cores
    result = run_bench("compression_quality.py", *on_tiny_model(tiny_model_dir, data_dir, tmp_path), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FAILED" not in result.stdout, result.stdout[-3000:]
    assert (
        "| torchao int8 dynamic act + weight |" in result.stdout
        and "| magnitude 50 % + LoRA 2 steps |" in result.stdout
    )
    assert (REPO / "bench" / "RESULTS.md").read_text() == before  # a smoke run records nothing


@pytest.mark.slow
def test_mixed_precision_bench_smoke(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    before = (REPO / "bench" / "RESULTS.md").read_text()
    result = run_bench("mixed_precision.py", *on_tiny_model(tiny_model_dir, data_dir, tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FAILED" not in result.stdout, result.stdout[-3000:]
    assert "| float32 |" in result.stdout and "| mixed knapsack 4.5 bits from {2,4,8} | 4.50 |" in result.stdout
    assert (REPO / "bench" / "RESULTS.md").read_text() == before  # a smoke run records nothing


@pytest.mark.slow
def test_recovery_bench_smoke(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    before = (REPO / "bench" / "RESULTS.md").read_text()
    # one pruning, LoRA and KD twice (equal steps, equal wall time), each step and measurement a child process
    result = run_bench("recovery.py", *on_tiny_model(tiny_model_dir, data_dir, tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| drop 1 of 2 layers + LoRA 2 steps | 2 |" in result.stdout, result.stdout[-3000:]
    assert "| drop 1 of 2 layers + KD 2 steps | 2 |" in result.stdout and "(LoRA's wall time) |" in result.stdout
    assert (REPO / "bench" / "RESULTS.md").read_text() == before  # a smoke run records nothing


@pytest.mark.slow
def test_faults_bench_smoke(data_dir: Path) -> None:
    # one scenario with its own limit of 420 s (agents started, one killed, the run recovers)
    result = run_bench("faults.py", "--data-dir", str(data_dir), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_gpu_check_bench_smoke(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("bench/gpu_check.py checks CUDA paths: no CUDA device here")
    result = run_bench("gpu_check.py", *on_tiny_model(tiny_model_dir, data_dir, tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '"method": "autoround"' in result.stdout and '"ok": true' in result.stdout


@pytest.mark.slow
def test_true_sizes_bench_smoke(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    before = (REPO / "bench" / "RESULTS.md").read_text()
    result = run_bench("true_sizes.py", *on_tiny_model(tiny_model_dir, data_dir, tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FAILED" not in result.stdout, result.stdout[-3000:]
    assert "| AutoRound W4 g64 RTN |" in result.stdout and "(compiled) |" in result.stdout
    assert (REPO / "bench" / "RESULTS.md").read_text() == before  # a smoke run records nothing
