"""Mixed precision under an average-bits budget on SmolLM2-135M, against dense and uniform RTN.

Perplexity is measured as `bench/compression_quality.py` measures it (WikiText-2 evaluation half,
4,096 tokens in 512-token windows), so its float32 and uniform W4 RTN rows compare with that table.
Each quantization and each measurement runs in a fresh child process, as the agents do. Rows are
cached under --work-dir, so an interrupted run resumes. Writes a section of bench/RESULTS.md.

    nice -n 10 python bench/mixed_precision.py --budgets 4.5,3.5,5.5
    python bench/mixed_precision.py --smoke --model build/test-cache/tiny-llama --work-dir /tmp/mp-smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from pathlib import Path
from typing import Any

from greenai.services.evaluation.perplexity import wikitext_perplexity
from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.shared.jobs import run_in_child
from greenai.shared.model_io import count_parameters, folder_bytes, materialize, resolve_model, weight_bytes

Row = tuple[str, str, dict[str, Any]]  # (label, method, params); method "" is the float32 source itself


def settings(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = [("float32", "", {})]
    rows += [(f"AutoRound W{b} g64 RTN (uniform)", "autoround", {"bits": b, "group_size": 64}) for b in args.uniform]
    for budget in args.budgets:
        for strategy in args.strategies:
            for widths in args.widths:
                for opt in args.opt_rtn:
                    params = {"avg_bits": budget, "candidate_bits": widths, "strategy": strategy, "group_size": 64}
                    label = f"mixed {strategy} {budget} bits from {{{widths}}}"
                    if opt:
                        params["opt_rtn"] = True
                        label += ", opt-RTN"
                    rows.append((label, "mixed", params))
    return rows


def perplexity(folder: str, data_dir: str, tokens: int) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder)
    ppl, scored = wikitext_perplexity(model, AutoTokenizer.from_pretrained(folder), Path(data_dir), max_tokens=tokens)
    return {"ppl": ppl, "ppl_tokens": scored}


async def one(label: str, method: str, params: dict[str, Any], base: Path, args: argparse.Namespace) -> dict[str, Any]:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    cached = args.work_dir / "results" / f"{slug}.json"
    if cached.exists():
        return dict(json.loads(cached.read_text()))
    row: dict[str, Any] = {"label": label, "method": method, "params": params}
    folder = base
    if method:
        folder = args.work_dir / "artifacts" / slug
        samples, seq_len = args.calibration
        job = QuantizeJob.parse(method, params, str(base), str(folder), str(args.data_dir), samples, seq_len, 0, "cpu")
        done = await run_in_child(quantize_to_folder, job)
        metrics = dict(done.value.metrics)
        row.update(quantize_s=round(done.wall_s, 1), quantize_peak_mb=round(done.peak_rss_mb), metrics=metrics)
        if method == "autoround":
            row["avg_bits"] = float(params["bits"])
    measured = await run_in_child(perplexity, str(folder), str(args.data_dir), args.ppl_tokens)
    row.update(
        ppl=round(measured.value["ppl"], 3),
        ppl_tokens=measured.value["ppl_tokens"],
        size_mib=round(folder_bytes(folder) / 2**20, 1),
        bits_per_weight=round(weight_bytes(folder) * 8 / (count_parameters(base) or 1), 3),
    )
    if "metrics" in row:
        row["avg_bits"] = row["metrics"].get("avg_bits", row.get("avg_bits"))
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(row, indent=2))
    return row


def _widths(row: dict[str, Any]) -> str:
    counts = {k.removeprefix("layers_"): v for k, v in row.get("metrics", {}).items() if k.startswith("layers_")}
    order = sorted(counts.items(), key=lambda kv: int(kv[0].removesuffix("bit")))
    return ", ".join(f"{w.removesuffix('bit')}-bit: {n}" for w, n in order)


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    dense = next((r for r in rows if r["label"] == "float32"), None)
    w4 = next((r for r in rows if r["label"].startswith("AutoRound W4")), None)

    def rel(r: dict[str, Any], ref: dict[str, Any] | None) -> str:
        return f"{100 * (r['ppl'] / ref['ppl'] - 1):+.1f} %" if ref else "-"

    samples, seq_len = args.calibration
    lines = [
        f"Model `{args.model}`; perplexity on {rows[0]['ppl_tokens']} tokens of the WikiText-2 evaluation half in "
        "512-token windows (the settings of `bench/compression_quality.py`). All quantized rows are AutoRound RTN "
        f"(iters=0), group size 64, symmetric, `auto_round` format, reloaded with plain `from_pretrained`. "
        "`avg bits`: parameter-weighted nominal width of the quantized Linears (scales not counted; embeddings, "
        "lm_head and norms stay as the method writes them). `bits/weight`: weight files × 8 / source parameters. "
        f"Calibration: {samples} WikiText-2 samples of {seq_len} tokens (calibration half). `select s`: choosing the "
        "widths; `quantize s`: the whole job. Figures from one run on a shared 2-core machine.",
        "",
        "| setting | avg bits | layers per width | ppl | Δppl vs fp32 | Δppl vs W4 RTN | size MiB | bits/weight "
        "| select s | quantize s | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r.get("metrics", {})
        avg = f"{r['avg_bits']:.2f}" if r.get("avg_bits") is not None else "32"
        lines.append(
            f"| {r['label']} | {avg} | {_widths(r) or '-'} | {r['ppl']:.2f} | {rel(r, dense)} | {rel(r, w4)} "
            f"| {r['size_mib']:.1f} | {r['bits_per_weight']:.2f} | {m.get('selection_s', '-')} "
            f"| {r.get('quantize_s', '-')} | {r.get('quantize_peak_mb', '-')} |"
        )
    return "\n".join(lines)


def write_results(text: str) -> None:
    path = Path(__file__).with_name("RESULTS.md")
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    section = "## Mixed precision under a bit budget (`bench/mixed_precision.py`)\n\n" + text + "\n"
    pattern = re.compile(r"## Mixed precision under a bit budget.*?(?=\n## |\Z)", re.S)
    if pattern.search(current):
        current = pattern.sub(lambda _: section.rstrip("\n"), current)
    else:
        current = current.rstrip("\n") + "\n\n" + section
    path.write_text(current.rstrip("\n") + "\n")


def measured_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every row measured in this work dir (this run's and earlier runs'): dense, uniform, then mixed."""
    rows = [json.loads(p.read_text()) for p in sorted((args.work_dir / "results").glob("*.json"))]
    kind = {"": 0, "autoround": 1}
    return sorted(rows, key=lambda r: (kind.get(r["method"], 2), r.get("avg_bits") or 0, r["label"]))


async def main(args: argparse.Namespace) -> None:
    base = materialize(resolve_model(args.model), args.work_dir / "models")
    for label, method, params in settings(args):
        try:
            row = await one(label, method, params, base, args)
            print(f"done: {label}: ppl {row['ppl']:.3f}, avg bits {row.get('avg_bits')}", flush=True)
            if "layer_bits" in row.get("metrics", {}):
                print(f"{label}: {row['metrics']['layer_bits']}", flush=True)
        except Exception as exc:  # one failing row is reported; the others still run
            print(f"FAILED: {label}: {type(exc).__name__}: {exc}", flush=True)
            continue
        if args.write:  # after every row: a run stopped early still leaves what it measured
            write_results(table(measured_rows(args), args))
    rows = measured_rows(args)
    if rows:
        print(table(rows, args))


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--work-dir", type=Path, default=Path("build/bench-mixed"))
    parser.add_argument("--model", default="smollm2-135m", help="an alias, a .gguf file or a model folder")
    parser.add_argument("--budgets", type=_floats, default=[4.5], help="average bits, comma-separated")
    parser.add_argument("--strategies", type=lambda s: s.split(","), default=["knapsack"], help="knapsack,autoscheme")
    parser.add_argument(
        "--widths", type=lambda s: s.split(";"), default=["2,4,8"], help="candidate sets, ';'-separated"
    )
    parser.add_argument("--uniform", type=lambda s: [int(b) for b in s.split(",") if b], default=[4], help="W bits")
    parser.add_argument(
        "--opt-rtn", type=lambda s: [x == "opt" for x in s.split(",")], default=[False], help="plain,opt: RTN kinds"
    )
    parser.add_argument("--calibration", type=lambda s: tuple(int(x) for x in s.split("x")), default=(32, 256))
    parser.add_argument("--ppl-tokens", type=int, default=4096)
    parser.add_argument("--no-write", dest="write", action="store_false", help="print only; leave RESULTS.md alone")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, no RESULTS update (use a tiny --model)")
    args = parser.parse_args()
    if args.smoke:
        args.ppl_tokens, args.calibration, args.write, args.budgets, args.uniform = 256, (2, 32), False, [4.5], []
        args.work_dir = args.work_dir / "smoke"  # never mixed with the cached results of a full run
    asyncio.run(main(args))
