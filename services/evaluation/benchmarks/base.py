"""What a benchmark is to the evaluation agent: documents in one normalised schema, and an lm-eval
task config that scores them.

Every source of a benchmark (the files under the data dir, the standard dataset on the Hugging Face
Hub, a user's JSONL) is first turned into the same list of documents; the task config only ever
sees that schema, so a score does not depend on where the data came from. The documents of one
evaluation (all of them, or a seeded subset) are written to one JSONL file that lm-eval reads with
its `json` loader.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

SUBSET_VERSION = 2  # bump when the subset or the documents change, so cached results are not reused


class UnknownBenchmarkError(LookupError):
    pass


class BenchmarkDataError(ValueError):
    """A benchmark's files are missing or malformed; the message names the file, line and field."""


@dataclass(frozen=True)
class HubSource:
    """The standard dataset on the Hugging Face Hub, used when the data dir lacks the files."""

    path: str
    name: str | None
    split: str
    normalise: Callable[[Doc], Doc]

    def load(self) -> list[Doc]:
        from datasets import load_dataset

        rows = load_dataset(self.path, self.name, split=self.split)
        return [self.normalise(dict(row)) for row in rows]


@dataclass(frozen=True)
class Benchmark:
    name: str
    family: str
    metric: str  # key in lm-eval's results, without the filter
    config: Callable[[], dict[str, Any]]  # the lm-eval task config, less its dataset
    load_local: Callable[[Path], list[Doc]]  # data dir -> normalised documents
    hub: HubSource | None = None
    filter: str = "none"  # lm-eval filter whose score is reported (e.g. GSM8K's flexible-extract)
    higher_is_better: bool = True
    bounded: bool = True  # a score in [0, 1]: can be the run's target (the Pareto front's accuracy axis)
    description: str = ""
    self_contained: bool = False  # reads its own file (a user's benchmark), not the data dir
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def metric_label(self) -> str:
        return self.metric if self.filter == "none" else f"{self.metric} ({self.filter})"

    def documents(self, data_dir: Path | None, allow_hub: bool = True) -> list[Doc]:
        """All documents, from the data dir when it has them, else from the Hub."""
        if self.self_contained:
            return self.load_local(data_dir or Path())
        if data_dir is not None:
            try:
                return self.load_local(data_dir)
            except FileNotFoundError:
                if self.hub is None or not allow_hub:
                    raise
        elif self.hub is None or not allow_hub:
            raise FileNotFoundError(f"benchmark {self.name}: no data dir set and no Hub source")
        assert self.hub is not None
        return self.hub.load()

    def task_config(self, docs_file: Path) -> dict[str, Any]:
        return {
            "task": f"greenai_{self.name}",
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(docs_file)}},
            "test_split": "test",
            **self.config(),
        }


def mean_metrics(*names: str) -> list[dict[str, Any]]:
    """lm-eval metric entries: each a mean over documents, higher is better."""
    return [{"metric": n, "aggregation": "mean", "higher_is_better": True} for n in names]


def seeded_subset(docs: list[Doc], limit: int | None, seed: int) -> list[Doc]:
    """`limit` documents drawn with `seed`, in file order: the same (limit, seed) always picks the same items."""
    if limit is None or limit >= len(docs):
        return docs
    picked = sorted(random.Random(seed).sample(range(len(docs)), limit))
    return [docs[i] for i in picked]


def write_docs(docs: list[Doc], folder: Path) -> Path:
    """Content-addressed, so concurrent jobs and repeated runs share one file safely."""
    body = "".join(json.dumps(d, sort_keys=True, ensure_ascii=False) + "\n" for d in docs)
    path = folder / f"{hashlib.sha256(body.encode()).hexdigest()[:20]}.jsonl"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{random.getrandbits(32):08x}.tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(path)
    return path


def read_jsonl(path: Path, opener: Callable[..., Any] = open) -> list[Doc]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (is the data dir right?)")
    docs = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise BenchmarkDataError(f"{path}, line {n}: not valid JSON ({exc.msg})") from exc
    return docs


def require(doc: Doc, key: str, where: str) -> Any:
    if key not in doc:
        raise BenchmarkDataError(f"{where}: field {key!r} is missing")
    return doc[key]
