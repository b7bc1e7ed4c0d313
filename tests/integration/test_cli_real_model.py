"""The real thing, reduced: `greenai run` on SmolLM2-135M with an embedded NATS server, `greenai tail`
watching it, then `greenai replay` rebuilding a byte-identical Pareto front from the log alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def cli_env(work_dir: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env.update(
        GREENAI_WORK_DIR=str(work_dir),
        GREENAI_DATA_DIR=str(data_dir),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        COLUMNS="160",
    )
    return env


def greenai(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greenai", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_run_tail_replay_on_smollm2(smollm2_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    # The GGUF → float32 conversion is exercised by the smollm2_dir fixture; reuse its result.
    shutil.copytree(smollm2_dir, work / "models" / "smollm2-135m", copy_function=os.link)
    env = cli_env(work, data_dir)
    run = subprocess.Popen(
        [sys.executable, "-m", "greenai", "run", "--model", "smollm2-135m", "--dataset", "arc_easy",
         "--episodes", "2", "--limit", "6", "--name", "smol-e2e", "--policy", "grid"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    # While it runs, `greenai tail` finds the embedded server through the work dir and prints events.
    endpoint = work / "nats" / "endpoint.json"
    deadline = time.monotonic() + 120
    while not endpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    tail = subprocess.Popen(
        [sys.executable, "-m", "greenai", "tail", "smol-e2e", "--from-start"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = run.communicate(timeout=1500)
    finally:
        if run.poll() is None:
            run.kill()
        tail.terminate()
        tail_out, _ = tail.communicate(timeout=30)
    assert run.returncode == 0, out
    assert "experiment completed" in out
    assert "Pareto front" in out
    assert "run requested: smollm2-135m" in tail_out
    assert "evaluated: episode" in tail_out

    folder = work / "experiments" / "smol-e2e"
    for name in ("model_spec.json", "pareto_frontier.json", "final_results.json", "skill_memory.json",
                 "episode_001/strategy.json", "episode_001/results.json", "episode_002/results.json"):  # fmt: skip
        assert (folder / name).is_file(), name
    spec = json.loads((folder / "model_spec.json").read_text())
    assert spec["num_parameters"] == 134_515_008 and spec["architecture"] == "LlamaForCausalLM"
    final = json.loads((folder / "final_results.json").read_text())
    assert final["status"] == "completed"
    assert [e["status"] for e in final["episodes"]] == ["evaluated", "evaluated"]
    baseline = final["baseline"]
    assert baseline["n"] == 6 and baseline["energy"]["mode"] == "estimated"
    results = json.loads((folder / "episode_001" / "results.json").read_text())
    assert results["steps"][0]["artifact"]["bytes"] < baseline["size_bytes"]
    front = json.loads((folder / "pareto_frontier.json").read_text())
    assert len(front["candidates"]) == 3 and front["front"]

    before = (folder / "pareto_frontier.json").read_bytes()
    shutil.rmtree(folder)
    replay = greenai("replay", "smol-e2e", env=env)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert (folder / "pareto_frontier.json").read_bytes() == before

    listing = greenai("experiments", env=env)
    assert "smol-e2e" in listing.stdout and "completed" in listing.stdout

    html = (folder / "pareto_visualization.html").read_text()
    assert "pareto-grid" in html and "pareto-3d" in html and "plotly" in html.lower()
    report = greenai("analyze", "smol-e2e", "--format", "json", env=env)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["summary"]["status"] == "completed" and len(data["pareto"]["candidates"]) == 3


def test_unknown_model_fails_the_experiment_with_a_clear_event(data_dir: Path, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "work", data_dir)
    result = greenai(
        "run",
        "--model",
        "no-such-model",
        "--episodes",
        "1",
        "--limit",
        "2",
        "--name",
        "bad-model",
        env=env,
        timeout=300,
    )
    assert result.returncode == 1
    out = result.stdout.replace("\n", " ")
    assert "experiment failed" in out and "unknown model 'no-such-model'" in out
    listing = greenai("experiments", env=env)
    assert "bad-model" in listing.stdout and "failed" in listing.stdout


def test_spec_prints_the_model_the_machine_and_what_fits(data_dir: Path, tmp_path: Path) -> None:
    result = greenai("spec", "smollm2-135m", "--json", env=cli_env(tmp_path / "work", data_dir))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["spec"]["num_parameters"] == 134_515_008 and data["spec"]["source"] == "gguf"
    assert data["hardware"]["cores"] >= 1 and data["hardware"]["ram_gib"] > 0
    methods = {r["method"]: r for r in data["methods"]}
    assert {"autoround", "gptq", "awq", "bnb_int8", "bnb_4bit", "torchao_int8"} <= set(methods)
    assert methods["gptq"]["needs_gib"] == round(2.5 * 4 * 134_515_008 / 2**30, 2)
    missing = greenai("spec", "no-such-model", env=cli_env(tmp_path / "work", data_dir))
    assert missing.returncode == 1 and "unknown model" in missing.stdout


def test_interactive_run_records_who_decided(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "work", data_dir)
    args = ["run", "--model", str(tiny_model_dir), "--episodes", "1", "--limit", "2", "--policy", "grid",
            "--interactive", "--name", "asked"]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "greenai", *args], env=env, input="r\na\n", capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(greenai("analyze", "asked", "--format", "json", env=env).stdout)
    (episode,) = report["summary"]["episodes"]
    assert episode["status"] == "evaluated"
    detailed = greenai("analyze", "asked", "--format", "detailed", env=env).stdout.replace("\n", " ")
    assert "proposal 1: reject by" in detailed and "proposal 2: approve by" in detailed
    strategy = json.loads((tmp_path / "work" / "experiments" / "asked" / "episode_001" / "strategy.json").read_text())
    assert "approved by" in strategy["decision"]["rationale"]
    assert strategy["decision"]["steps"][0]["params"]["bits"] == 4  # the grid's second proposal
