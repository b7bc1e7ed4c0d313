"""A user's own benchmark: JSONL + description, or an lm-eval task folder; errors name field and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenai.services.evaluation.benchmarks.auto import benchmark
from greenai.services.evaluation.benchmarks.base import BenchmarkDataError
from greenai.services.evaluation.job import prepare_task, run_tasks
from tests.scripted_lm import ScriptedLM

ROWS = [
    {"q": "What colour is the sky on a clear day?", "options": ["green", "blue"], "label": 1},
    {"q": "How many legs has a spider?", "options": ["eight", "six"], "label": "eight"},
]


def write(folder: Path, rows: list[object], description: str) -> Path:
    path = folder / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "mine.yaml").write_text(description)
    return path


MC = 'type: multiple_choice\nprompt: "Q: {{q}}\\nA:"\nchoices_field: options\nanswer_field: label\n'


def test_multiple_choice_rows_score_by_hand(tmp_path: Path) -> None:
    path = write(tmp_path, ROWS, MC)
    task = prepare_task(str(path), None, None, 0, str(tmp_path / "cache"))
    lm = ScriptedLM(prefer=lambda context, continuation: continuation.strip() in {"blue", "six"})
    (score,) = run_tasks(lm, [task], 0, None)
    assert score["value"] == 0.5 and score["n"] == 2  # sky right, spider wrong
    assert lm.contexts[0] == "Q: What colour is the sky on a clear day?\nA:"


def test_exact_match_rows(tmp_path: Path) -> None:
    rows = [{"question": "2 + 2 =", "answer": 4}, {"question": "Capital of France?", "answer": "Paris"}]
    path = write(tmp_path, rows, "type: exact_match\n")
    task = prepare_task(str(path), None, None, 0, str(tmp_path / "cache"))
    (score,) = run_tasks(ScriptedLM(generate=lambda c: " 4" if "2 + 2" in c else " Lyon"), [task], 0, None)
    assert score["value"] == 0.5


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([ROWS[0], {"q": "x", "label": 0}], r"mine\.jsonl, line 2: field 'options' is missing"),
        (
            [ROWS[0], ROWS[1], {"q": "x", "options": ["a", "b"], "label": 2}],
            r"line 3: field 'label' = 2 is not an index",
        ),
        ([{"q": "x", "options": ["a", "b"], "label": "c"}], r"line 1: field 'label' = 'c' is not one of the choices"),
        ([{"q": "x", "options": "ab", "label": 0}], r"line 1: field 'options' must be a list"),
        ([{"options": ["a", "b"], "label": 0}], r"line 1: field 'q' is missing"),
    ],
)
def test_a_wrong_or_missing_field_names_the_field_and_line(tmp_path: Path, rows: list[object], message: str) -> None:
    path = write(tmp_path, rows, MC)
    with pytest.raises(BenchmarkDataError, match=message):
        benchmark(str(path))


def test_bad_json_and_bad_description_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, ROWS, MC)
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(BenchmarkDataError, match=r"line 3: not valid JSON"):
        benchmark(str(path))
    path = write(tmp_path, ROWS, "type: essay\n")
    with pytest.raises(BenchmarkDataError, match=r"mine\.yaml: field type"):
        benchmark(str(path))
    (tmp_path / "mine.yaml").unlink()
    with pytest.raises(BenchmarkDataError, match=r"no description beside it"):
        benchmark(str(path))


def test_an_lm_eval_task_folder(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:1]))
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "sky.yaml").write_text(
        "task: my_sky\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: '{{options}}'\n"
        "doc_to_target: '{{label}}'\nmetric_list:\n  - metric: acc\n"
    )
    task = prepare_task(str(folder), None, None, 0, str(tmp_path / "cache"))
    (score,) = run_tasks(ScriptedLM(prefer=lambda c, x: x.strip() == "blue"), [task], 0, None)
    assert score["value"] == 1.0 and score["metric"] == "acc"
