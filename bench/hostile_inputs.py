"""Hostile inputs for bench/hostile.py, generated from the event registry's pydantic models.

Every registered event type gets a minimal valid body built from its own fields (so the generator
follows schema changes instead of rotting), then seeded mutations of each field: wrong types,
huge and odd unicode strings, negative / NaN / infinite numbers, missing and unknown fields,
unknown versions, and path strings in every field that could become a path.
"""

from __future__ import annotations

import json
import random
import types
import typing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from greenai.events.envelope import EventData
from greenai.events.registry import event_types

TRAVERSALS = (
    "../../../../tmp/greenai-hostile-victim",
    "/etc/passwd",
    "..",
    "a/../../b",
    "~root/.ssh",
    "C:\\Windows\\system32",
    "x\x00y",
    "/proc/self/environ",
    "file:///etc/shadow",
    "nats://evil:4222",
)
ODD_STRINGS = (
    "",
    " ",
    "\u202eevil\u202c",
    "💥" * 50,
    "\ud7ff\ue000",
    "a" * 100_000,
    "{{ 7*7 }}",
    "{% for x in range(10**9) %}{% endfor %}",
    "'; DROP TABLE events; --",
    "\n" * 1000,
)
ODD_NUMBERS: tuple[Any, ...] = (-1, 0, 2**63, -(2**63), 1e308, float("nan"), float("inf"), -float("inf"), 0.5, True)
ODD_VALUES: tuple[Any, ...] = (None, [], {}, [[[[[]]]]], {"$ref": "#"}, "1", 1, 1.5, False)


@dataclass(frozen=True)
class HostileInput:
    """One message an attacker could publish: subject, raw body, and what it attacks."""

    category: str
    type: str
    description: str
    experiment: str
    body: bytes


def _leaf(annotation: Any, name: str) -> Any:
    """A valid value for one field, or raise ValueError when the builder cannot make one."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return None
    if origin in (typing.Union, types.UnionType):
        if type(None) in args:
            return None
        return _leaf(args[0], name)
    if origin is Literal:
        return args[0]
    if origin is typing.Annotated:
        return _leaf(args[0], name)
    if origin in (list, tuple, set):
        return []
    if origin is dict:
        return {}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return example_fields(annotation)
    if annotation is bool:
        return False
    if annotation is int:
        return 1
    if annotation is float:
        return 1.0
    if annotation is str:
        return "a" * 64 if "sha" in name else "x"
    if annotation is uuid.UUID:
        return str(uuid.uuid4())
    if annotation is datetime:
        return datetime.now(UTC).isoformat()
    if annotation is Any:
        return "x"
    raise ValueError(f"no example for {annotation!r}")


def example_fields(cls: type[BaseModel]) -> dict[str, Any]:
    """Required fields filled with minimal valid values; fields with defaults left out."""
    out: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        if field.is_required():
            out[name] = _leaf(field.annotation, name)
    return out


def valid_body(cls: type[EventData]) -> dict[str, Any] | None:
    """A minimal body that validates, trying the alternatives of Literal fields when a validator objects."""
    base = example_fields(cls)
    candidates = [base]
    for name, field in cls.model_fields.items():
        if typing.get_origin(field.annotation) is Literal:
            candidates += [{**base, name: v} for v in typing.get_args(field.annotation)[1:]]
    for body in candidates:
        try:
            cls.model_validate(body)
            return body
        except ValidationError:
            continue
    return None


def envelope(experiment: str, type_: str, version: int, data: Any, **over: Any) -> dict[str, Any]:
    env = {
        "event_id": str(uuid.uuid4()),
        "experiment_id": experiment,
        "type": type_,
        "version": version,
        "time": datetime.now(UTC).isoformat(),
        "producer": "hostile",
        "data": data,
    }
    env.update(over)
    return env


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _mutations(rng: random.Random, body: dict[str, Any], cls: type[EventData]) -> Iterator[tuple[str, Any]]:
    names = list(cls.model_fields)
    for name in names:
        yield f"{name}: wrong type", {**body, name: rng.choice(ODD_VALUES)}
        yield f"{name}: odd string", {**body, name: rng.choice(ODD_STRINGS)}
        yield f"{name}: odd number", {**body, name: rng.choice(ODD_NUMBERS)}
        yield f"{name}: path string", {**body, name: rng.choice(TRAVERSALS)}
        if name in body:
            yield f"{name}: missing", {k: v for k, v in body.items() if k != name}
    yield "unknown field", {**body, "__proto__": {"admin": True}}


def generate(seed: int, per_type: int, experiment_prefix: str) -> list[HostileInput]:
    """Seeded inputs: for each registered type, up to `per_type` mutated bodies plus envelope attacks."""
    rng = random.Random(seed)
    out: list[HostileInput] = []
    n = 0

    def exp() -> str:
        nonlocal n
        n += 1
        return f"{experiment_prefix}-{n}"

    for (type_, version), cls in event_types().items():
        body = valid_body(cls)
        if body is None:
            continue
        muts = list(_mutations(rng, body, cls))
        rng.shuffle(muts)
        for desc, data in muts[:per_type]:
            e = exp()
            out.append(HostileInput("schema", type_, desc, e, _dump(envelope(e, type_, version, data))))
        e = exp()
        out.append(HostileInput("envelope", type_, "unknown version", e, _dump(envelope(e, type_, 99, body))))
        e = exp()
        out.append(
            HostileInput(
                "envelope",
                type_,
                "experiment differs from subject",
                e,
                _dump(envelope("elsewhere", type_, version, body)),
            )
        )
        e = exp()
        out.append(HostileInput("envelope", type_, "not JSON", e, b"\x00\xff{not json"))
        e = exp()
        out.append(HostileInput("envelope", type_, "JSON array", e, b"[1, 2, 3]"))
        e = exp()
        out.append(
            HostileInput("envelope", type_, "NaN time", e, _dump(envelope(e, type_, version, body, time=float("nan"))))
        )
    return out


# Model-written code an attacker would hand the HumanEval sandbox. Each program gets the bench's
# canary paths and a listener port through str.format; `contained` in bench/hostile.py checks the host.
SANDBOX_ATTACKS: dict[str, str] = {
    "frame walk clears the audit hook, then subprocess": (
        "import sys\n"
        "f = sys._getframe()\n"
        "while f is not None:\n"
        "    for k in list(f.f_globals):\n"
        "        if k.startswith('_DENY') or k.startswith('_ALLOW'):\n"
        "            f.f_globals[k] = ()\n"
        "    f = f.f_back\n"
        "import subprocess\n"
        "subprocess.run(['sh', '-c', 'echo pwned > {victim}-frame'])\n"
    ),
    "ctypes and os.fork after the frame walk": (
        "import ctypes, os\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    open('{victim}-fork', 'w').write('pwned')\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    ),
    "setsid grandchild sleeping forever": (
        "import os\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.execvp('sleep', ['sleep', '{sleep_marker}'])\n"
        "    os._exit(0)\n"
        "import time; time.sleep(3600)\n"
    ),
    "read other processes' environment through /proc": (
        "import os, glob\n"
        "found = []\n"
        "for p in ['/proc/%d/environ' % os.getppid(), '/proc/1/environ'] + glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        found.append(open(p, 'rb').read().decode('latin-1'))\n"
        "    except OSError:\n"
        "        pass\n"
        "import sys; sys.stderr.write('\\n'.join(found)); sys.exit(1)\n"
    ),
    "write outside the sandbox's tmp": (
        "for p in ['{victim}-write', '{outside}/planted', '/root/greenai-hostile-planted']:\n"
        "    try:\n"
        "        open(p, 'w').write('pwned')\n"
        "    except OSError:\n"
        "        pass\n"
    ),
    "list the work dir and home": (
        "import os, sys\n"
        "for p in ['{outside}', '/root', '/work']:\n"
        "    try:\n"
        "        sys.stderr.write(p + ': ' + ','.join(os.listdir(p)) + '\\n')\n"
        "    except OSError:\n"
        "        pass\n"
        "sys.exit(1)\n"
    ),
    "300 MB of output": (
        "import sys\n"
        "chunk = 'x' * (1 << 20)\n"
        "for _ in range(150):\n"
        "    sys.stdout.write(chunk); sys.stderr.write(chunk)\n"
    ),
    "fork bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"),
    "socket to a listener on the host": (
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'pwned')\n"
    ),
    "endless loop": "while True:\n    pass\n",
    "10 GB allocation": "x = bytearray(10 * 1024 ** 3)\n",
}

MODEL_PATHS = ("/etc", "../../../../etc", "~/.ssh", "/proc/self", "file:///etc/passwd", "http://127.0.0.1:1/m",
               "org/../name", "/root", "smollm2-135m/../../x", "models/../../../etc")  # fmt: skip


def user_benchmark_files(root: Path) -> dict[str, Path]:
    """Malformed and malicious user benchmarks, written under `root` (outside every work dir)."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def jsonl(name: str, rows: str, spec: str) -> None:
        (root / f"{name}.jsonl").write_text(rows, encoding="utf-8")
        (root / f"{name}.yaml").write_text(spec, encoding="utf-8")
        files[name] = root / f"{name}.jsonl"

    mc = "type: multiple_choice\nprompt: '{{question}}'\n"
    jsonl("missing-field", '{"question": "q", "choices": ["a", "b"]}\n', mc)
    jsonl("not-json", "{not json\n", mc)
    jsonl("bad-answer", '{"question": "q", "choices": ["a", "b"], "answer": 7}\n', mc)
    jsonl("bad-yaml", '{"question": "q", "choices": ["a", "b"], "answer": 0}\n', "type: [unclosed\n")
    jsonl("no-rows", "", mc)
    jsonl(
        "template-injection",
        '{"question": "q", "choices": ["a", "b"], "answer": 0}\n',
        "type: multiple_choice\n"
        "prompt: \"{{ cycler.__init__.__globals__.os.popen('touch /tmp/greenai-hostile-victim-ssti').read() }}\"\n",
    )
    task = root / "function-task"
    task.mkdir(exist_ok=True)
    (task / "task.yaml").write_text(
        "task: evil\ndataset_path: json\noutput_type: multiple_choice\ndoc_to_text: !function utils.pwn\n",
        encoding="utf-8",
    )
    (task / "utils.py").write_text("open('/tmp/greenai-hostile-victim-fn', 'w').write('pwned')\n", encoding="utf-8")
    files["function-task"] = task
    include = root / "include-task"
    include.mkdir(exist_ok=True)
    (include / "task.yaml").write_text("task: inc\ninclude: ../../../../etc/evil.yaml\n", encoding="utf-8")
    files["include-outside"] = include
    return files


def path_inputs(prefix: str, root: Path) -> list[HostileInput]:
    """Path strings in every field that becomes a path: job ids, model references, datasets, manifests."""
    from greenai.events.registry import lookup

    out: list[HostileInput] = []
    n = 0

    def add(category: str, type_: str, desc: str, data: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        e = f"{prefix}-{n}"
        cls = max((v for (t, v) in event_types() if t == type_), default=1)
        out.append(HostileInput(category, type_, desc, e, _dump(envelope(e, type_, cls, data))))

    for type_ in ("quantize.requested", "prune.requested", "lora.requested", "evaluate.requested"):
        version = max(v for (t, v) in event_types() if t == type_)
        cls = lookup(type_, version)
        assert cls is not None
        body = valid_body(cls) or {}
        for victim in TRAVERSALS[:6]:
            add("path", type_, f"job_id {victim!r}", {**body, "job_id": victim})
    run_cls = lookup("run.requested", max(v for (t, v) in event_types() if t == "run.requested"))
    assert run_cls is not None
    run_body = {**(valid_body(run_cls) or {}), "dataset": "arc_easy", "episodes": 1}
    for model in MODEL_PATHS:
        add("path", "run.requested", f"model {model!r}", {**run_body, "model": model})
    for name, path in user_benchmark_files(root / "user-benchmarks").items():
        add(
            "benchmark", "run.requested", f"dataset {name}", {**run_body, "model": "smollm2-135m", "dataset": str(path)}
        )
        eval_cls = lookup("evaluate.requested", max(v for (t, v) in event_types() if t == "evaluate.requested"))
        assert eval_cls is not None
        add("benchmark", "evaluate.requested", f"task {name}", {**(valid_body(eval_cls) or {}), "task": str(path)})
    for dataset in ("/etc/passwd", "../../../../etc/passwd.jsonl", "/proc/self/environ"):
        add("path", "run.requested", f"dataset {dataset!r}", {**run_body, "model": "smollm2-135m", "dataset": dataset})
    return out
