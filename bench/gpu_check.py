"""One short check of every CUDA path, for a lent GPU (a few minutes on an H100).

Loads the real SmolLM2-135M (GGUF), quantizes it with each method on CUDA, reloads each artifact on
CUDA with plain `from_pretrained`, and prints WikiText-2 perplexity (evaluation half, 4k tokens),
decode/prefill ms/token, CUDA peak memory, codecarbon energy and its mode, and the layer class that
ran. A method whose library is missing fails alone, with its error.

    python bench/gpu_check.py --data-dir ../shared/data [--model path/to/model.gguf]
    python bench/gpu_check.py --smoke --model build/test-cache/tiny-llama   # seconds: float32 + one method

Select checks with `--only` (labels, comma-separated; default: all). Energy is read from NVML where the
GPU has a counter (mode `measured`), for the quantization job, the evaluation, and the latency phase alone
(J per 1,000 generated tokens = the latency phase's mean power × decode ms/token, as the break-even does).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from greenai.services.evaluation.latency import measure_latency
from greenai.services.evaluation.perplexity import wikitext_perplexity
from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.shared.energy import track_energy
from greenai.shared.model_io import materialize, read_runtime, resolve_model

CHECKS: dict[str, tuple[str, dict[str, Any]]] = {
    "w8": ("autoround", {"bits": 8, "group_size": 64, "iters": 0}),
    "w4": ("autoround", {"bits": 4, "group_size": 64, "iters": 0}),
    "w4-tuned": ("autoround", {"bits": 4, "group_size": 64, "iters": 200}),  # too slow on the 2-core CPU
    "bnb-int8": ("bnb_int8", {}),
    "nf4": ("bnb_4bit", {"quant_type": "nf4"}),
    "int8-eager": ("torchao_int8", {"scheme": "dynamic", "runtime": "eager"}),
    "int8-compiled": ("torchao_int8", {"scheme": "dynamic", "runtime": "compiled"}),
    "int8-wo": ("torchao_int8", {"scheme": "weight_only", "runtime": "eager"}),
    "gptq": ("gptq", {"bits": 4, "group_size": 64}),
    "awq": ("awq", {"bits": 4, "group_size": 64}),
    "mixed-4.5-tuned": ("mixed", {"avg_bits": 4.5, "strategy": "knapsack", "iters": 200}),
    "mixed-4.5": ("mixed", {"avg_bits": 4.5, "strategy": "knapsack"}),
    "autoscheme-4.5": ("mixed", {"avg_bits": 4.5, "strategy": "autoscheme"}),
    "mixed-3.5-tuned": ("mixed", {"avg_bits": 3.5, "strategy": "knapsack", "iters": 200}),
}


def measure(folder: Path, data_dir: Path, ppl_tokens: int = 4096, runtime: str | None = None) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    runtime = runtime or read_runtime(folder)
    torch.cuda.reset_peak_memory_stats()
    with track_energy() as energy:
        model = AutoModelForCausalLM.from_pretrained(folder, device_map="cuda")
        tok = AutoTokenizer.from_pretrained(folder)
        ppl, tokens = wikitext_perplexity(model, tok, data_dir, max_tokens=ppl_tokens)
        with track_energy() as lat_energy:
            lat = measure_latency(model, tok, runtime=runtime)  # type: ignore[arg-type]
    layer = type(model.model.layers[0].self_attn.q_proj).__name__
    peak = torch.cuda.max_memory_allocated() / 2**20
    del model
    torch.cuda.empty_cache()
    watts = lat_energy.joules / lat_energy.seconds if lat_energy.seconds else 0.0
    return {
        "ppl": round(ppl, 3), "tokens": tokens, "runtime": runtime, "decode_ms": lat.decode_ms_per_token,
        "decode_iqr_ms": lat.decode_ms_iqr, "repetitions": lat.repetitions, "compile_s": lat.compile_s,
        "prefill_ms": lat.prefill_ms_per_token, "device": lat.device, "cuda_peak_mib": round(peak, 1),
        "energy_j": round(energy.joules, 2), "energy_mode": energy.mode, "energy_detail": energy.detail,
        "latency_w": round(watts, 1), "j_per_1k_tokens": round(watts * lat.decode_ms_per_token, 1),
        "layer": layer, "folder_mib": round(sum(f.stat().st_size for f in folder.iterdir()) / 2**20, 1),
    }  # fmt: skip


def main(data_dir: Path, work: Path, model: str, out: Path | None, smoke: bool = False, only: str = "") -> None:
    if not torch.cuda.is_available():
        raise SystemExit("this check needs a CUDA device: none is visible here")
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}", flush=True)
    base = materialize(resolve_model(model), work / "models")
    ppl_tokens = 256 if smoke else 4096
    wanted = [w for w in only.split(",") if w] or (["w8"] if smoke else list(CHECKS))
    rows: list[dict[str, Any]] = []

    def done(row: dict[str, Any]) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)
        if out is not None:  # after every row: a run stopped at its time limit keeps what it measured
            out.write_text(json.dumps(rows, indent=2))

    done({"label": "float32", "method": "float32", "params": {}, "ok": True, **measure(base, data_dir, ppl_tokens)})
    for label in wanted:
        method, params = CHECKS.get(label, ("float32", {}))
        target = work / label
        try:
            if label == "float32-compiled":
                done({"label": label, "method": method, "params": params, "ok": True,
                      **measure(base, data_dir, ppl_tokens, runtime="compiled")})  # fmt: skip
                continue
            t0 = time.perf_counter()
            with track_energy() as job_energy:
                output = quantize_to_folder(
                    QuantizeJob.parse(method, params, str(base), str(target), str(data_dir), 128, 512, 0, "cuda")
                )
            row = {
                "label": label, "method": method, "params": params, "ok": True,
                "quantize_s": round(time.perf_counter() - t0, 1), "quantize_j": round(job_energy.joules, 1),
                "quantize_energy_mode": job_energy.mode, "metrics": output.metrics,
            }  # fmt: skip
            done(row | measure(target, data_dir, ppl_tokens))
        except Exception as exc:
            traceback.print_exc()
            done({"label": label, "method": method, "params": params, "ok": False,
                  "error": f"{type(exc).__name__}: {exc}"[:500]})  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "greenai-gpu-check")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ["OUT"]) / "gpu_check.json" if "OUT" in os.environ else None
    )
    parser.add_argument("--smoke", action="store_true", help="float32 and one method, 256 tokens (use a tiny --model)")
    parser.add_argument("--only", default="", help=f"labels, comma-separated: float32-compiled, {', '.join(CHECKS)}")
    args = parser.parse_args()
    main(args.data_dir, args.work_dir, args.model, None if args.smoke else args.out, args.smoke, args.only)
