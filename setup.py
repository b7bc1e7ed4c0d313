"""Package discovery for the repository's layout: each top-level folder is a subpackage of `greenai`.

pyproject.toml cannot map several source roots into one namespace with automatic discovery, and a
hand-kept list drifts (it once left `greenai.services.evaluation.benchmarks` out of the wheel).
Every folder with an `__init__.py` under a root is packaged; tests/test_packaging.py checks a built wheel.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "greenai": "greenai",
    "greenai.cli": "cli",
    "greenai.events": "events",
    "greenai.projections": "projections",
    "greenai.shared": "shared",
    "greenai.services": "services",
}


def discover() -> list[str]:
    here = Path(__file__).parent
    found = []
    for package, root in ROOTS.items():
        for init in sorted((here / root).rglob("__init__.py")):
            rel = init.parent.relative_to(here / root)
            if "__pycache__" in rel.parts:
                continue
            found.append(".".join([package, *rel.parts]) if rel.parts else package)
    return found


setup(packages=discover(), package_dir=ROOTS, package_data={"greenai.services.dashboard": ["static/*"]})
