"""An lm-eval task folder runs no Python unless the user trusts it: `!function` in any spelling, in
any YAML under the folder or included by one, template injection, metric scripts and includes out of
the folder are refused with a readable reason, before lm-eval sees the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenai.services.coordinator.admission import Refused, check_benchmarks
from greenai.services.evaluation.benchmarks.auto import benchmark
from greenai.services.evaluation.benchmarks.base import BenchmarkDataError
from greenai.services.evaluation.benchmarks.task_code import sandbox_templates

TASK = """task: mytask
dataset_path: json
dataset_kwargs:
  data_files:
    test: data.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "Q: {{question}}"
doc_to_choice: "{{choices}}"
doc_to_target: "{{label}}"
metric_list:
  - metric: acc
"""


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "task"
    for name, text in {"task.yaml": TASK, **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_plain_task_folder_is_accepted(tmp_path: Path) -> None:
    bench = benchmark(str(folder(tmp_path, {})))
    assert bench.meta["lm_eval_task"] == "mytask"


FUNCTION = TASK.replace('doc_to_text: "Q: {{question}}"', "doc_to_text: !function utils.doc_to_text")
HOSTILE: dict[str, tuple[dict[str, str], str]] = {
    "function-tag": ({"task.yaml": FUNCTION, "utils.py": "def doc_to_text(d): return 'x'\n"}, "!function"),
    "function-in-include": (
        {"task.yaml": "include: _template_yaml\ntask: mytask\n", "_template_yaml": FUNCTION.replace("task: m", "x: m")},
        "!function",
    ),
    "function-by-tag-directive": (
        {"task.yaml": "%TAG !f! !fun\n---\n" + TASK.replace('"Q: {{question}}"', "!f!ction utils.doc_to_text")},
        "!function",
    ),
    "function-verbatim": ({"task.yaml": TASK.replace('"Q: {{question}}"', "!<!function> utils.x")}, "!function"),
    "function-in-subfolder": ({"sub/other.yaml": "task: other\nprocess_docs: !function evil.go\n"}, "!function"),
    "template-injection": (
        {"task.yaml": TASK.replace("{{question}}", "{{ cycler.__init__.__globals__.os.popen('id').read() }}")},
        "private attribute",
    ),
    "template-attr-filter": ({"task.yaml": TASK.replace("{{question}}", "{{ cycler|attr('x') }}")}, "'attr' filter"),
    "metric-script": ({"task.yaml": TASK.replace("metric: acc", "metric: ./evil_metric")}, "not a plain name"),
    "python-file": ({"helpers.py": "import os\n"}, "Python files"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_task_code_is_refused_without_trust(case: str, tmp_path: Path) -> None:
    files, reason = HOSTILE[case]
    root = folder(tmp_path, files)
    with pytest.raises(BenchmarkDataError, match="--trust-task-code") as err:
        benchmark(str(root))
    assert reason in str(err.value)
    with pytest.raises(Refused, match="--trust-task-code"):
        check_benchmarks(str(root), [], None)  # the coordinator's admission refuses it the same way


def test_trusted_task_code_is_accepted(tmp_path: Path) -> None:
    root = folder(tmp_path, HOSTILE["function-tag"][0])
    assert benchmark(str(root), True).meta["lm_eval_task"] == "mytask"
    check_benchmarks(str(root), [], None, trust_task_code=True)


@pytest.mark.parametrize("trust", [False, True])
def test_an_include_out_of_the_folder_is_refused_even_when_trusted(trust: bool, tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text("output_type: multiple_choice\n")
    root = folder(tmp_path, {"task.yaml": "include: ../outside.yaml\n" + TASK})
    with pytest.raises(BenchmarkDataError, match="outside the task folder"):
        benchmark(str(root), trust)


def test_an_alias_bomb_is_read_once(tmp_path: Path) -> None:
    pairs = zip("abcdefgh", "bcdefghi", strict=True)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    bomb += "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in pairs)
    root = folder(tmp_path, {"task.yaml": TASK + bomb})
    assert benchmark(str(root)).meta["lm_eval_task"] == "mytask"


def test_lm_eval_renders_templates_in_a_sandbox() -> None:
    from jinja2.exceptions import SecurityError
    from lm_eval.utils import apply_template

    sandbox_templates()
    assert apply_template("Q: {{question}}", {"question": "why?"}) == "Q: why?"
    with pytest.raises(SecurityError):
        apply_template("{{ q[k1 ~ k2] }}", {"q": "x", "k1": "__cl", "k2": "ass__"})  # a computed key
