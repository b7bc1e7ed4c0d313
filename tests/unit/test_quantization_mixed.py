"""Mixed precision under a bit budget: the knapsack's arithmetic, budgets refused before any work, and
the tiny random Llama quantized for real (per-layer bits within budget, in the event, reloadable)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.services.quantization.methods.auto import METHODS, get_method
from greenai.services.quantization.methods.bit_budget import assign_bits, average_bits
from greenai.shared.artifacts import StepOutput
from greenai.shared.jobs import JobError

# three layers, widths 2/4/8; penalties chosen so every step is easy to follow by hand
SIZES = {"a": 100, "b": 100, "c": 200}
SCORES = {
    "a": {2: 10.0, 4: 2.0, 8: 0.0},  # upgrades: 2->4 drops 8 for 200 bits (0.04/bit), 4->8 drops 2 for 400
    "b": {2: 4.0, 4: 1.0, 8: 0.5},  # 2->4: 3 for 200 (0.015), 4->8: 0.5 for 400 (0.00125)
    "c": {2: 6.0, 4: 3.0, 8: 0.0},  # 2->4: 3 for 400 (0.0075), 4->8: 3 for 800 (0.00375)
}


def penalty(assignment: dict[str, int]) -> float:
    return sum(SCORES[n][b] for n, b in assignment.items())


@pytest.mark.parametrize(
    ("avg_bits", "expected"),
    [
        # budget 2000 bit-params; start at 2 bits (800): a4 (1000), b4 (1200), c4 (1600), a8 (2000); c8, b8 do not fit
        (5.0, {"a": 8, "b": 4, "c": 4}),
        # budget 1400: a4 (1000), b4 (1200); c4 (+400) and a8 (+400) do not fit; nothing of <= 200 helps
        (3.5, {"a": 4, "b": 4, "c": 2}),
        (2.0, {"a": 2, "b": 2, "c": 2}),
        (8.0, {"a": 8, "b": 8, "c": 8}),
    ],
)
def test_knapsack_on_a_hand_computed_case(avg_bits: float, expected: dict[str, int]) -> None:
    chosen = assign_bits(SIZES, SCORES, avg_bits)
    assert chosen == expected
    assert average_bits(chosen, SIZES) <= avg_bits
    # and it is the optimum here: no assignment within budget has a smaller penalty
    best = min(
        penalty(dict(zip(SIZES, combo, strict=True)))
        for combo in itertools.product((2, 4, 8), repeat=3)
        if average_bits(dict(zip(SIZES, combo, strict=True)), SIZES) <= avg_bits
    )
    assert penalty(chosen) == best


def test_a_width_off_the_convex_hull_is_skipped_but_the_budget_still_holds() -> None:
    # 4 bits barely helps d: the step worth taking is 2 -> 8 at once
    sizes = {"d": 100, "e": 100}
    scores = {"d": {2: 10.0, 4: 9.9, 8: 0.0}, "e": {2: 1.0, 4: 0.5, 8: 0.4}}
    assert assign_bits(sizes, scores, 5.0) == {"d": 8, "e": 2}


def test_random_cases_never_exceed_the_budget() -> None:
    rng = random.Random(0)
    for _ in range(200):
        names = [f"l{i}" for i in range(rng.randint(1, 6))]
        sizes = {n: rng.choice([64, 128, 4096, 12288]) for n in names}
        scores: dict[str, dict[int, float]] = {}
        for n in names:
            hi = rng.uniform(0, 10)
            scores[n] = {2: hi, 4: hi * rng.uniform(0, 1.2), 8: hi * rng.uniform(0, 0.3)}
        avg = rng.uniform(2, 8)
        chosen = assign_bits(sizes, scores, avg)
        assert set(chosen) == set(names)
        assert average_bits(chosen, sizes) <= avg + 1e-12


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"avg_bits": 2.5, "candidate_bits": "3,4,8"}, "below the smallest candidate width 3"),
        ({"avg_bits": 3.0, "candidate_bits": "4,8"}, "below the smallest candidate width 4"),
        ({"avg_bits": 5.0, "candidate_bits": "2,3,4"}, "above the largest candidate width 4"),
        ({"avg_bits": 1.5}, "greater than or equal to 2"),
        ({"avg_bits": 9}, "less than or equal to 8"),
        ({"avg_bits": float("nan")}, "avg_bits"),
        ({"avg_bits": "4.5 bits"}, "avg_bits"),
        ({"candidate_bits": "2,16"}, "candidate_bits"),
        ({"candidate_bits": [2, 4, 8]}, "candidate_bits"),
        ({"strategy": "magic"}, "strategy"),
        ({"iters": -1}, "iters"),
        ({"iters": 10**6}, "iters"),
        ({"iters": "200 steps"}, "iters"),
        ({"avg_bits": 4.5, "layer_config": {"lm_head": 2}}, "layer_config"),
    ],
)
def test_bad_budgets_are_refused_as_invalid_before_any_work(params: dict[str, Any], reason: str) -> None:
    # parse is the agent's first step, before fetching or loading anything
    with pytest.raises(JobError, match=reason) as info:
        get_method("mixed").parse(params)
    assert info.value.reason == "invalid"
    with pytest.raises(JobError, match=reason):
        QuantizeJob.parse("mixed", params, "/nonexistent", "/nonexistent-out", None, 4, 64, 0, "cpu")


def test_the_catalogue_entry_announces_the_budget_and_its_choices() -> None:
    offer = METHODS["mixed"].catalogue_entry()
    props = offer.params_schema["properties"]
    assert props["avg_bits"]["minimum"] == 2 and props["avg_bits"]["maximum"] == 8
    assert "2,4,8" in props["candidate_bits"]["enum"] and "3,4,8" in props["candidate_bits"]["enum"]
    assert set(props["strategy"]["enum"]) == {"knapsack", "autoscheme"}
    assert offer.divides_widths == ["group_size"] and "llama" in (offer.families or [])
    for grid in [*offer.search, *(offer.fast_search or [])]:
        for value in grid["avg_bits"]:
            get_method("mixed").parse({"avg_bits": value})  # every searched budget is valid
    for p in offer.presets:
        get_method("mixed").parse(p.params)


def quantize(tiny: Path, target: Path, data_dir: Path, params: dict[str, Any]) -> StepOutput:
    job = QuantizeJob.parse("mixed", params, str(tiny), str(target), str(data_dir), 2, 32, 0, "cpu")
    return quantize_to_folder(job)


@pytest.fixture(scope="module")
def knapsack_artifact(
    tiny_model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, StepOutput]:
    target = tmp_path_factory.mktemp("mixed") / "artifact"
    return target, quantize(tiny_model_dir, target, data_dir, {"avg_bits": 4.5, "candidate_bits": "2,4,8"})


def test_knapsack_honours_the_budget_and_records_the_bits(knapsack_artifact: tuple[Path, StepOutput]) -> None:
    target, out = knapsack_artifact
    metrics = out.metrics
    assert metrics["strategy"] == "knapsack"
    assert isinstance(metrics["avg_bits"], float) and metrics["avg_bits"] <= 4.5
    layer_bits = json.loads(str(metrics["layer_bits"]))
    assert len(layer_bits) == 14  # 2 blocks x (q, k, v, o, gate, up, down)
    assert set(layer_bits.values()) <= {2, 4, 8} and len(set(layer_bits.values())) > 1
    qc = json.loads((target / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == "auto-round" and qc["group_size"] == 64
    for name, bits in layer_bits.items():  # the artifact says what the event says
        assert (qc.get("extra_config") or {}).get(name, {}).get("bits", qc["bits"]) == bits
    assert sum(v for k, v in metrics.items() if k.startswith("layers_") and isinstance(v, int)) == 14


def test_knapsack_artifact_reloads_and_generates(knapsack_artifact: tuple[Path, StepOutput]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target, _ = knapsack_artifact
    tok = AutoTokenizer.from_pretrained(target)
    model = AutoModelForCausalLM.from_pretrained(target)
    ids = tok("The capital of France is", return_tensors="pt")
    logits = model(**ids).logits
    assert torch.isfinite(logits).all()
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.input_ids.shape[1] + 4


def test_the_step_completion_carries_the_per_layer_bits(knapsack_artifact: tuple[Path, StepOutput]) -> None:
    from greenai.events.results import QuantizeCompleted

    _, out = knapsack_artifact
    encoded = QuantizeCompleted.model_validate(
        {
            "job_id": "j-mixed", "episode": 1, "method": "mixed", "params": out.config,
            "artifact": {"sha256": out.written.sha256, "bucket": "b", "bytes": out.written.bytes},
            "bits_per_weight": None, "wall_s": 1.0, "peak_rss_mb": 1.0, "metrics": out.metrics,
        }
    ).model_dump_json()  # fmt: skip
    assert json.loads(json.loads(encoded)["metrics"]["layer_bits"])  # survives the event's JSON


def test_autoscheme_strategy_runs_on_cpu_within_budget(tiny_model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    out = quantize(tiny_model_dir, tmp_path / "a", data_dir, {"avg_bits": 3.5, "strategy": "autoscheme"})
    assert out.metrics["strategy"] == "autoscheme"
    assert isinstance(out.metrics["avg_bits"], float) and out.metrics["avg_bits"] <= 3.5
    assert len(json.loads(str(out.metrics["layer_bits"]))) == 14


def test_sensitivity_falls_as_the_width_grows(tiny_model_dir: Path, data_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from greenai.services.quantization.methods.sensitivity import measure_sensitivity
    from greenai.shared.calibration import calibration_texts

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    texts = calibration_texts(data_dir, 2, 32, 0)
    scores = measure_sensitivity(model, AutoTokenizer.from_pretrained(tiny_model_dir), texts, (2, 4, 8), 64)
    assert len(scores) == 14
    for name, per in scores.items():
        assert per[2] > per[4] > per[8] > 0, name
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # measured, not modified
    with pytest.raises(ValueError, match="calibration"):
        measure_sensitivity(model, AutoTokenizer.from_pretrained(tiny_model_dir), [], (2, 4), 64)


def test_a_model_family_it_does_not_know_is_refused_before_loading() -> None:
    from transformers import GPT2Config

    with pytest.raises(JobError, match="does not support model type 'gpt2'") as info:
        get_method("mixed").check_family(GPT2Config())
    assert info.value.reason == "unsupported"


def test_thousands_of_layers_keep_the_event_small() -> None:
    from greenai.services.quantization.methods.mixed import MAX_LAYER_BITS_CHARS, bits_metrics

    few = bits_metrics({"a": 4, "b": 8, "c": 4})
    assert few == {"layers_4bit": 2, "layers_8bit": 1, "layer_bits": '{"a":4,"b":8,"c":4}'}
    many = bits_metrics({f"model.layers.{i}.mlp.experts.{j}.up_proj": 4 for i in range(64) for j in range(64)})
    assert many == {"layers_4bit": 4096, "layer_bits_in_artifact": True}
    assert len(json.dumps(bits_metrics({str(i): 2 for i in range(9000)}, limit=MAX_LAYER_BITS_CHARS))) < 1000
