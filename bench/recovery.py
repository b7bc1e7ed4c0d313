"""Recovery after pruning: knowledge distillation (the distillation agent's `kd`) against LoRA (the
LoRA agent's `lora`) on SmolLM2-135M, at equal steps and at equal wall time.

Two pruned students — 4 of 30 decoder layers dropped (`layer_drop`), and Wanda 50 % — are each
recovered by LoRA for --steps steps, by KD for the same steps, and by KD for as many steps as fit
in LoRA's wall time (computed from the KD run's own per-step time and fixed cost). Every model is
measured on WikiText-2 perplexity (evaluation half, 512-token windows) and ARC-Easy (lm-eval via
services/evaluation: its seeded subset of --arc-limit items, Wilson 95 % interval). "Gap closed" is the share of
the pruned model's loss against the dense one that recovery won back. Each step and each
measurement runs in a fresh child process, as the agents run them; results are cached per row in
--work-dir, so an interrupted run resumes.

    python bench/recovery.py --data-dir ../shared/data [--steps 20] [--arc-limit 100] [--prunings wanda] [--no-write]
    python bench/recovery.py --smoke --model build/test-cache/tiny-llama --work-dir /tmp/recovery-smoke
    (one pruning of a 2-layer model, 2 steps each, 256 tokens, 4 items, 9 child processes: ~100 s of CPU,
    3 min at load 6; RESULTS.md untouched)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from greenai.services.distillation.job import DistillJob, distill_to_folder
from greenai.services.distillation.train import KdParams
from greenai.services.evaluation.job import MAX_WINDOW, prepare_task, run_tasks
from greenai.services.evaluation.perplexity import wikitext_perplexity
from greenai.services.lora.job import LoraJob, lora_to_folder
from greenai.services.pruning.job import PruneJob, prune_to_folder
from greenai.shared.jobs import Measured, run_in_child
from greenai.shared.model_io import load_model, materialize, resolve_model

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("RESULTS.md")
PRUNINGS = {
    "drop 4 of 30 layers": ("layer_drop", {"layers": 4}),
    "Wanda 50 %": ("wanda", {"sparsity": 0.5}),
}
SMOKE_PRUNINGS = {"drop 1 of 2 layers": ("layer_drop", {"layers": 1})}  # the tiny model has 2 layers
THREADS = 1  # on 2 cores shared with others, 2 threads ran 4x slower than 1 (measured)


def measure(folder: str, data_dir: str, ppl_tokens: int, arc_limit: int, cache_dir: str) -> dict[str, Any]:
    """Perplexity and the evaluation agent's ARC-Easy scoring (its seeded subset, lm-eval, Wilson interval)
    on one loaded model; without the agent's latency and energy measurements, which this bench does not use."""
    os.environ.setdefault("HF_DATASETS_CACHE", str(Path(cache_dir) / "datasets"))
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    model, tokenizer = load_model(folder), AutoTokenizer.from_pretrained(folder)
    model.eval()
    ppl, tokens = wikitext_perplexity(model, tokenizer, Path(data_dir), ppl_tokens)
    task = prepare_task("arc_easy", data_dir, arc_limit, 0, cache_dir)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, max_length=MAX_WINDOW)
    (arc,) = run_tasks(lm, [task], 0, arc_limit)
    return {"ppl": ppl, "ppl_tokens": tokens, "acc": arc["value"], "ci": [arc["ci_low"], arc["ci_high"]], "n": arc["n"]}


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


class Bench:
    def __init__(self, args: argparse.Namespace, base: Path) -> None:
        self.args, self.base, self.work = args, base, args.work_dir
        self.rows: list[dict[str, Any]] = []
        self.prunings = SMOKE_PRUNINGS if args.smoke else PRUNINGS
        self.calibration = (4, 64) if args.smoke else (32, 256)  # pruning's samples x tokens

    def cached(self, label: str) -> dict[str, Any] | None:
        path = self.work / "results" / f"{slug(label)}.json"
        return dict(json.loads(path.read_text())) if path.exists() else None

    async def row(self, label: str, folder: Path, **extra: Any) -> dict[str, Any]:
        found = self.cached(label)
        if found is None:
            a = self.args
            done = await run_in_child(
                measure, str(folder), str(a.data_dir), a.ppl_tokens, a.arc_limit, str(self.work / "cache"),
                threads=THREADS,
            )  # fmt: skip
            found = {"label": label, **done.value, **extra}
            (self.work / "results").mkdir(parents=True, exist_ok=True)
            (self.work / "results" / f"{slug(label)}.json").write_text(json.dumps(found))
        print(f"{label}: ppl {found['ppl']:.2f}, ARC {found['acc']:.3f}, {found.get('wall_s', '-')} s", flush=True)
        self.rows.append(found)
        return found

    async def step(self, label: str, func: Any, args: Any) -> tuple[Path, dict[str, Any]]:
        """Run one compression or recovery step (cached by its folder and a small record of its cost)."""
        folder = self.work / "artifacts" / slug(label)
        record = self.work / "steps" / f"{slug(label)}.json"
        if not record.exists():
            done: Measured = await run_in_child(func, *args(folder), threads=THREADS)
            metrics = dict(done.value.metrics)  # DistillOutput and StepOutput both carry them
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"wall_s": round(done.wall_s, 1), "metrics": metrics}))
        return folder, json.loads(record.read_text())

    def kd(self, source: Path, steps: int) -> Any:
        a = self.args
        params = KdParams(steps=steps, temperature=a.temperature, learning_rate=a.kd_lr)
        return lambda folder: (DistillJob(params, str(source), str(self.base), str(folder), str(a.data_dir), 0, "cpu"),)

    def lora(self, source: Path, steps: int) -> Any:
        d = str(self.args.data_dir)
        return lambda folder: (LoraJob.parse("lora", {"steps": steps}, str(source), str(folder), d, 32, 0, "cpu"),)

    async def run(self) -> None:
        a, n = self.args, self.args.steps
        dense = await self.row(
            f"dense ({Path(a.model).name})" if a.smoke else "dense (SmolLM2-135M float32)", self.base
        )
        samples, seq_len = self.calibration
        for name, (method, params) in self.prunings.items():
            if a.prunings and method not in a.prunings:
                continue
            pruned, cost = await self.step(
                name,
                prune_to_folder,
                lambda f, m=method, p=params: (
                    PruneJob.parse(m, p, str(self.base), str(f), str(a.data_dir), samples, seq_len, 0, "cpu"),
                ),
            )
            before = await self.row(name, pruned, wall_s=cost["wall_s"], kind="pruned", dense=dense["label"])
            rec = {"kind": "recovered", "pruned": before["label"]}
            folder, lora = await self.step(f"{name} + LoRA {n}", lora_to_folder, self.lora(pruned, n))
            lora_row = await self.row(f"{name} + LoRA {n} steps", folder, wall_s=lora["wall_s"], steps=n, **rec)
            folder, kd = await self.step(f"{name} + KD {n}", distill_to_folder, self.kd(pruned, n))
            await self.row(f"{name} + KD {n} steps", folder, wall_s=kd["wall_s"], steps=n, **rec)
            # equal wall time: KD's own fixed cost and per-step time, fitted into LoRA's wall time
            per_step = max(kd["metrics"]["train_s"] / n, 1e-3)  # a tiny model's steps may round to 0 s
            fixed = kd["wall_s"] - kd["metrics"]["train_s"]
            k = max(1, math.floor((lora_row["wall_s"] - fixed) / per_step))
            if a.smoke:  # a tiny model's steps take milliseconds: LoRA's wall time would fit thousands
                k = min(k, 2 * n)
            folder, kd_eq = await self.step(f"{name} + KD {k}", distill_to_folder, self.kd(pruned, k))
            label = f"{name} + KD {k} steps (LoRA's wall time)"
            await self.row(label, folder, wall_s=kd_eq["wall_s"], steps=k, equal_wall=True, **rec)

    def table(self) -> str:
        by_label = {r["label"]: r for r in self.rows}
        dense = self.rows[0]
        lines = [
            "| model | steps | recovery wall s | ppl | ppl gap closed | ARC-Easy acc [95% CI] | ARC gap closed |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            pruned = by_label.get(r.get("pruned", ""))
            ppl_closed = acc_closed = "-"
            if pruned is not None:
                ppl_gap = pruned["ppl"] - dense["ppl"]
                ppl_closed = f"{(pruned['ppl'] - r['ppl']) / ppl_gap:.0%}" if ppl_gap else "n/a (no gap)"
                gap = dense["acc"] - pruned["acc"]
                acc_closed = f"{(r['acc'] - pruned['acc']) / gap:.0%}" if gap >= 0.05 else "n/a (gap < 0.05)"
            wall = r.get("wall_s", "-") if r.get("kind") == "recovered" else "-"
            lines.append(
                f"| {r['label']} | {r.get('steps', '-')} | {wall} | {r['ppl']:.2f} | {ppl_closed} | "
                f"{r['acc']:.3f} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}] | {acc_closed} |"
            )
        return "\n".join(lines)


def write_results(body: str) -> None:
    current = RESULTS.read_text(encoding="utf-8")
    section = "## Recovery after pruning: distillation vs LoRA (`bench/recovery.py`)\n\n" + body.rstrip("\n")
    pattern = re.compile(r"## Recovery after pruning: distillation vs LoRA.*?(?=\n## |\Z)", re.S)
    if pattern.search(current):
        current = pattern.sub(lambda _: section, current)
    else:
        current = current.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(current, encoding="utf-8")


async def main(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    base = materialize(resolve_model(args.model), REPO / "build" / "test-cache" / "models")
    bench = Bench(args, base)
    if args.table_only:  # what finished so far, in the order it was measured
        files = sorted((args.work_dir / "results").glob("*.json"), key=lambda f: f.stat().st_mtime)
        bench.rows = [json.loads(f.read_text()) for f in files]
    else:
        await bench.run()
    table = bench.table()
    print(table)
    print(f"bench wall time: {time.perf_counter() - start:.0f} s")
    if args.write:
        head = (
            f"SmolLM2-135M-Instruct float32; {args.steps} recovery steps of 4 × 128 tokens from the calibration half of "
            f"WikiText-2 for both methods (LoRA rank 8 on q/v, lr 2e-4, merged; KD: every weight but the embeddings, "
            f"AdamW lr {args.kd_lr:g}, logits KL at T={args.temperature:g}, the dense model as teacher, pruned zeros "
            f"kept zero). Perplexity: {args.ppl_tokens} tokens of the WikiText-2 evaluation half; ARC-Easy: lm-eval "
            f"`acc` on the evaluation agent's seeded subset of {args.arc_limit} items, Wilson 95 % interval. Gap closed: (pruned − recovered) / "
            "(pruned − dense). Wall time: the whole step's process (load, train, save), on 2 cores shared with "
            "other jobs.\n\n"
        )
        write_results(head + table + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work-dir", type=Path, default=REPO / "build" / "bench-recovery")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--kd-lr", type=float, default=KdParams().learning_rate)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--arc-limit", type=int, default=100)
    parser.add_argument("--ppl-tokens", type=int, default=2048)
    parser.add_argument("--prunings", type=lambda v: v.split(","), default=None, help="e.g. layer_drop,wanda")
    parser.add_argument("--table-only", action="store_true", help="no new runs: the table of the cached rows")
    parser.add_argument("--no-write", dest="write", action="store_false", help="print only; leave RESULTS.md alone")
    parser.add_argument("--model", default="smollm2-135m", help="an alias or a model folder (the smoke: a tiny one)")
    parser.add_argument(
        "--smoke", action="store_true", help="1 pruning, 2 steps, 256 tokens, 4 items, no RESULTS update (tiny --model)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.ppl_tokens, args.arc_limit, args.write = 2, 256, 4, False
        args.work_dir = args.work_dir / "smoke"  # never mixed with the cached results of a full run
    asyncio.run(main(args))
