"""The wheel holds every module: built with `pip wheel`, installed without `-e`, each module imported."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"greenai": "greenai", "cli": "cli", "events": "events", "projections": "projections", "shared": "shared",
         "services": "services"}  # fmt: skip


def repo_modules() -> set[str]:
    out = set()
    for name, root in ROOTS.items():
        package = ["greenai"] if name == "greenai" else ["greenai", name]
        for path in (REPO / root).rglob("*.py"):
            rel = path.relative_to(REPO / root).with_suffix("")
            parts = [*package, *rel.parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if "__pycache__" not in parts:
                out.add(".".join(parts))
    return out


@pytest.mark.slow
def test_wheel_installs_and_imports_every_module(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("greenai-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = {
            n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            for n in zf.namelist()
            if n.endswith(".py")
        }
    missing = repo_modules() - in_wheel
    assert not missing, f"modules left out of the wheel: {sorted(missing)}"

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True
    )
    modules = sorted(repo_modules())
    script = (
        "import importlib, sys\n"
        "import greenai\n"
        f"assert greenai.__file__.startswith({str(target)!r}), greenai.__file__\n"
        f"for m in {modules!r}:\n"
        "    if m.endswith('__main__'): continue\n"
        "    importlib.import_module(m)\n"
        "print('imported', len(sys.modules))\n"
    )
    # the installed copy first on the path, outside the repository, so the editable install is not used
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
