"""What an lm-eval task folder can make the evaluation agent run, found before lm-eval reads it.

lm-eval imports and calls the Python a task YAML names with a `!function` tag (any spelling of the
tag: a `%TAG` directive or `!<!function>` resolve to it too), follows `include:` wherever it points
(relative to the including file, extension or not), indexes every YAML under the folder, hands
unknown metric names to HF `evaluate.load` (which runs a local metric script), and renders its
templates with a plain Jinja environment. An untrusted folder may do none of that; with the user's
`--trust-task-code` only the includes must stay inside the folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from greenai.services.evaluation.benchmarks.base import BenchmarkDataError

MAX_FILES = 200
MAX_FILE_BYTES = 1024 * 1024
STANDARD_TAG = "tag:yaml.org,2002:"
PLAIN_METRIC = re.compile(r"^[A-Za-z0-9_]{1,64}$")
TRUST_HINT = "pass --trust-task-code to allow it"


def _nodes(root: yaml.Node) -> Iterator[yaml.Node]:
    """Every node once (aliases share nodes: walking them twice would be a billion laughs)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += list(node.value)


def _pairs(root: yaml.Node) -> Iterator[tuple[str, yaml.Node]]:
    for node in _nodes(root):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    yield str(key.value), value


def _unsafe_template(text: str) -> str | None:
    """Why a Jinja template reaches for Python internals, or None: private attributes, names or
    string constants, or the `attr` filter. The early, readable refusal; computed keys are stopped at
    render time by `sandbox_templates`."""
    from jinja2 import Environment, TemplateSyntaxError, nodes

    if "{{" not in text and "{%" not in text:
        return None
    try:
        tree = Environment().parse(text)
    except TemplateSyntaxError as exc:
        return f"is not a valid template ({exc.message})"
    for node in tree.find_all((nodes.Getattr, nodes.Const, nodes.Filter, nodes.Name)):
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            return f"reads the private attribute {node.attr!r}"
        if isinstance(node, nodes.Const) and isinstance(node.value, str) and node.value.startswith("_"):
            return f"names the private {node.value!r}"
        if isinstance(node, nodes.Filter) and node.name == "attr":
            return "uses the 'attr' filter"
        if isinstance(node, nodes.Name) and node.name.startswith("_"):
            return f"names the private variable {node.name!r}"
    return None


def _scan(path: Path, folder: Path, trust_code: bool, seen: set[Path]) -> None:
    if path in seen:
        return
    seen.add(path)
    if len(seen) > MAX_FILES:
        raise BenchmarkDataError(f"{folder}: more than {MAX_FILES} YAML files")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BenchmarkDataError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        docs = list(yaml.compose_all(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BenchmarkDataError(f"{path}: not valid YAML ({exc})") from exc
    for root in (d for d in docs if d is not None):
        for node in _nodes(root):
            if not node.tag.startswith(STANDARD_TAG) and not trust_code:
                raise BenchmarkDataError(
                    f"{path}: the tag {node.tag!r} runs Python outside any sandbox (lm-eval's !function); {TRUST_HINT}"
                )
            if isinstance(node, yaml.ScalarNode) and not trust_code:
                why = _unsafe_template(str(node.value))
                if why is not None:
                    raise BenchmarkDataError(f"{path}: a template {why}; {TRUST_HINT}")
        for key, value in _pairs(root):
            if key == "include" and isinstance(value, yaml.ScalarNode):
                target = (path.parent / str(value.value)).resolve()
                if not target.is_relative_to(folder):
                    raise BenchmarkDataError(f"{path}: includes {value.value!r}, outside the task folder")
                if not target.is_file():
                    raise BenchmarkDataError(f"{path}: includes {value.value!r}, which does not exist")
                _scan(target, folder, trust_code, seen)
            elif trust_code:
                continue
            elif key == "metric" and isinstance(value, yaml.ScalarNode) and not PLAIN_METRIC.match(str(value.value)):
                raise BenchmarkDataError(
                    f"{path}: metric {str(value.value)[:100]!r} is not a plain name (HF evaluate would load it as a "
                    f"script); {TRUST_HINT}"
                )
            elif key in ("hf_evaluate", "trust_remote_code") and str(getattr(value, "value", "")).lower() == "true":
                raise BenchmarkDataError(f"{path}: {key}: true runs code from outside the folder; {TRUST_HINT}")


def check_task_folder(folder: Path, trust_code: bool) -> None:
    """Raise `BenchmarkDataError` for what an untrusted task folder may not do; includes outside the
    folder are refused even when trusted (a task folder is self-contained)."""
    folder = folder.resolve()
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if len(files) > MAX_FILES:
        raise BenchmarkDataError(f"{folder}: more than {MAX_FILES} YAML files")
    seen: set[Path] = set()
    for path in files:
        if not path.resolve().is_relative_to(folder):
            raise BenchmarkDataError(f"{path}: a link out of the task folder")
        _scan(path.resolve(), folder, trust_code, seen)
    if not trust_code:
        python = next((p for p in folder.rglob("*.py")), None)
        if python is not None:
            raise BenchmarkDataError(f"{python}: a task folder with Python files; {TRUST_HINT}")


def sandbox_templates() -> None:
    """Make lm-eval render every task template in Jinja's sandbox (private attributes and unsafe
    calls refused at render time). Called in the evaluation child before any task is built."""
    import lm_eval.utils as lm_utils
    from jinja2 import BaseLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    if isinstance(lm_utils.env, SandboxedEnvironment):
        return
    env = SandboxedEnvironment(loader=BaseLoader(), undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters.update(lm_utils.env.filters)
    lm_utils.env = env
