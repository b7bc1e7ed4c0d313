"""A user's own benchmark: a JSONL file with a short description beside it (`<name>.yaml` or
`<name>.json`), or a folder holding an lm-eval task YAML. Every line is checked before anything
runs, and an error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from jinja2 import TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, ValidationError

from greenai.services.evaluation.benchmarks.base import Benchmark, BenchmarkDataError, Doc, mean_metrics, read_jsonl
from greenai.services.evaluation.benchmarks.task_code import check_task_folder


class UserBenchmarkSpec(BaseModel):
    """The description file. `prompt` is a Jinja template over a row's fields."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    type: Literal["multiple_choice", "exact_match"]
    prompt: str = "{{question}}"
    choices_field: str = "choices"  # multiple_choice: a list of strings per row
    answer_field: str = "answer"  # multiple_choice: index or the choice's text; exact_match: the expected text
    until: list[str] = ["\n\n"]  # exact_match: where generation stops
    max_gen_toks: int = 64
    description: str = ""


def _spec_file(jsonl: Path) -> Path:
    for suffix in (".yaml", ".yml", ".json"):
        candidate = jsonl.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise BenchmarkDataError(f"{jsonl}: no description beside it ({jsonl.with_suffix('.yaml').name} or .json)")


def load_spec(jsonl: Path) -> UserBenchmarkSpec:
    path = _spec_file(jsonl)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return UserBenchmarkSpec.model_validate(raw)
    except yaml.YAMLError as exc:
        raise BenchmarkDataError(f"{path}: not valid YAML/JSON ({exc})") from exc
    except ValidationError as exc:
        problems = "; ".join(f"field {'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise BenchmarkDataError(f"{path}: {problems}") from exc


def _render(template: Any, doc: dict[str, Any], where: str) -> str:
    """The row's prompt, rendered here in Jinja's sandbox: lm-eval would render a template with a plain
    Environment, where `{{ cycler.__init__.__globals__.os... }}` runs code. Only text reaches lm-eval."""
    try:
        return str(template.render(**doc))
    except TemplateError as exc:  # SecurityError included: unsafe attribute access is refused
        raise BenchmarkDataError(f"{where}: the prompt cannot be rendered safely ({exc})") from exc


def _check(doc: Any, spec: UserBenchmarkSpec, fields: set[str], where: str, template: Any) -> Doc:
    if not isinstance(doc, dict):
        raise BenchmarkDataError(f"{where}: a row must be a JSON object")
    needed = fields | {spec.answer_field} | ({spec.choices_field} if spec.type == "multiple_choice" else set())
    for key in sorted(needed):
        if key not in doc:
            raise BenchmarkDataError(f"{where}: field {key!r} is missing")
    answer = doc[spec.answer_field]
    if spec.type == "exact_match":
        if not isinstance(answer, str | int | float):
            raise BenchmarkDataError(f"{where}: field {spec.answer_field!r} must be text or a number")
        return {"prompt": _render(template, doc, where), "target": str(answer)}
    choices = doc[spec.choices_field]
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise BenchmarkDataError(f"{where}: field {spec.choices_field!r} must be a list of at least two strings")
    if isinstance(answer, bool) or not isinstance(answer, int | str):
        raise BenchmarkDataError(f"{where}: field {spec.answer_field!r} must be an index or one of the choices")
    if isinstance(answer, int):
        if not 0 <= answer < len(choices):
            raise BenchmarkDataError(
                f"{where}: field {spec.answer_field!r} = {answer} is not an index into the choices"
            )
        gold = answer
    elif answer in choices:
        gold = choices.index(answer)
    else:
        raise BenchmarkDataError(f"{where}: field {spec.answer_field!r} = {answer!r} is not one of the choices")
    return {"prompt": _render(template, doc, where), "choices": choices, "gold": gold}


def jsonl_benchmark(path: Path) -> Benchmark:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"benchmark file {path} not found")
    spec = load_spec(path)
    env = SandboxedEnvironment()
    try:
        fields = meta.find_undeclared_variables(env.parse(spec.prompt))
        compiled = env.from_string(spec.prompt)
    except Exception as exc:  # jinja's TemplateSyntaxError and friends
        raise BenchmarkDataError(f"{_spec_file(path)}: field 'prompt' is not a valid template ({exc})") from exc
    # documents carry the prompt already rendered: {prompt, choices, gold} / {prompt, target}
    template = "{{prompt}}"

    def load(_: Path) -> list[Doc]:
        docs = [_check(d, spec, fields, f"{path}, line {n}", compiled) for n, d in enumerate(read_jsonl(path), 1)]
        if not docs:
            raise BenchmarkDataError(f"{path}: no rows")
        return docs

    def config() -> dict[str, Any]:
        if spec.type == "multiple_choice":
            return {
                "output_type": "multiple_choice",
                "doc_to_text": template,
                "doc_to_choice": "{{choices}}",
                "doc_to_target": "{{gold}}",
                "metric_list": mean_metrics("acc"),
                "metadata": {"version": 1.0},
            }
        return {
            "output_type": "generate_until",
            "doc_to_text": template,
            "doc_to_target": "{{target}}",
            "generation_kwargs": {"do_sample": False, "until": spec.until, "max_gen_toks": spec.max_gen_toks},
            "metric_list": [{
                "metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                "ignore_case": True, "ignore_punctuation": True, "regexes_to_ignore": [r"^\s+", r"\s+$"],
            }],
            "metadata": {"version": 1.0},
        }  # fmt: skip

    metric = "acc" if spec.type == "multiple_choice" else "exact_match"
    load(path)  # every line checked now, not halfway through an evaluation
    return Benchmark(
        str(path), "user", metric, config, load, description=spec.description or spec.name or path.stem,
        self_contained=True,
    )  # fmt: skip


def _check_task_code(folder: Path, yamls: list[Path], trust_code: bool) -> None:
    """lm-eval runs the Python a task YAML names with `!function`, outside any sandbox, and follows
    `include:` wherever it points: refuse code unless the user trusted it at the CLI (recorded in the run
    request), and includes outside the folder always. Every YAML under the folder and every included
    file is read (services/evaluation/benchmarks/task_code.py)."""
    check_task_folder(folder, trust_code)


def lm_eval_folder_benchmark(folder: Path, trust_code: bool = False) -> Benchmark:
    """An lm-eval task folder: lm-eval reads its YAML itself (and its dataset, from the Hub or local files)."""
    folder = folder.expanduser().resolve()
    yamls = sorted(folder.glob("*.yaml"))
    _check_task_code(folder, yamls, trust_code)
    tasks = []
    for y in yamls:
        try:
            cfg = yaml.load(y.read_text(encoding="utf-8"), Loader=_IgnoreTags)
        except yaml.YAMLError as exc:
            raise BenchmarkDataError(f"{y}: not valid YAML ({exc})") from exc
        if isinstance(cfg, dict) and "task" in cfg:
            tasks.append((y, cfg))
    if len(tasks) != 1:
        raise BenchmarkDataError(
            f"{folder}: want exactly one lm-eval task YAML (with a 'task' field), found {len(tasks)}"
        )
    y, cfg = tasks[0]
    metrics = cfg.get("metric_list") or [{"metric": "acc"}]
    metric = str(metrics[0].get("metric", "acc"))

    def unsupported(_: Path) -> list[Doc]:
        raise BenchmarkDataError(f"{folder}: an lm-eval task folder loads its own documents")

    return Benchmark(
        str(folder), "user", metric, lambda: {}, unsupported,
        description=str(cfg.get("task")), meta={"lm_eval_task": str(cfg["task"]), "include_path": str(folder)},
    )  # fmt: skip


class _IgnoreTags(yaml.SafeLoader):
    """Reads lm-eval YAML (with its `!function` tags) just far enough to find the task name."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


def user_benchmark(name: str, trust_code: bool = False) -> Benchmark:
    path = Path(name)
    if path.is_dir():
        return lm_eval_folder_benchmark(path, trust_code)
    if path.suffix == ".jsonl":
        return jsonl_benchmark(path)
    raise FileNotFoundError(f"{name}: not a .jsonl file or an lm-eval task folder")


def is_user_benchmark(name: str) -> bool:
    return name.endswith(".jsonl") or "/" in name or Path(name).is_dir()
