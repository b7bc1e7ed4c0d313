"""Reports are written from folds, outside them: the experiment folder is the same bytes for the same
log, its page escapes what it is given, and no module under projections/ does any I/O."""

from __future__ import annotations

import ast
from pathlib import Path

from greenai.events import Envelope
from greenai.projections.pareto import pareto_front
from greenai.shared.reports.charts import pareto_html
from greenai.shared.reports.experiment_folder import write_experiment_folder
from tests import factories as f
from tests.conftest import REPO


def log() -> list[Envelope]:
    events = [f.run(), f.spec(), f.evaluated("e", 0, 0.6, 50, 500, 4000)]
    events += [
        f.decided("e", 1),
        f.quantize_requested("e", 1),
        f.quantized("e", 1),
        f.evaluated("e", 1, 0.5, 30, 300, 2000),
    ]
    return events


def test_the_same_log_writes_the_same_bytes(tmp_path: Path) -> None:
    events = log()
    a = write_experiment_folder(tmp_path / "a", "e", events)
    b = write_experiment_folder(tmp_path / "b", "e", events)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert {"final_results.json", "pareto_frontier.json", "pareto_visualization.html"} <= {str(p) for p in files}
    assert Path("episode_001/strategy.json") in files
    assert all((a / p).read_bytes() == (b / p).read_bytes() for p in files)


def test_the_page_escapes_its_title() -> None:
    page = pareto_html(pareto_front(log()), "<script>alert(1)</script>")
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>" in page


def test_projections_do_no_io() -> None:
    """Folds take events and return state: no files, no network, no rendering (that is shared/reports/)."""
    banned_modules = {"os", "pathlib", "shutil", "socket", "subprocess", "plotly", "nats", "asyncio", "tempfile"}
    banned_calls = {"open", "print", "read_text", "write_text", "read_bytes", "write_bytes", "mkdir", "unlink"}
    for path in sorted((REPO / "projections").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not {n.split(".")[0] for n in names} & banned_modules, f"{path.name} imports {names}"
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                assert name not in banned_calls, f"{path.name}:{node.lineno} calls {name}"
