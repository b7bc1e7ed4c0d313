"""One short check of every CUDA path, for a lent GPU (a few minutes on an H100).

Loads the real SmolLM2-135M (GGUF), quantizes it with each method on CUDA, reloads each artifact on
CUDA with plain `from_pretrained`, and prints WikiText-2 perplexity (evaluation half, 4k tokens),
decode/prefill ms/token, CUDA peak memory, codecarbon energy and its mode, and the layer class that
ran. A method whose library is missing fails alone, with its error.

    python bench/gpu_check.py --data-dir ../shared/data [--model path/to/model.gguf]
    python bench/gpu_check.py --smoke --model build/test-cache/tiny-llama   # seconds: float32 + one method
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
from greenai.shared.model_io import materialize, resolve_model

CHECKS: list[tuple[str, dict[str, Any]]] = [
    ("autoround", {"bits": 8, "group_size": 64, "iters": 0}),
    ("autoround", {"bits": 4, "group_size": 64, "iters": 0}),
    ("autoround", {"bits": 4, "group_size": 64, "iters": 200}),  # tuned rounding: too slow on the 2-core CPU
    ("bnb_int8", {}),
    ("bnb_4bit", {"quant_type": "nf4"}),
    ("torchao_int8", {"scheme": "dynamic"}),
    ("torchao_int8", {"scheme": "weight_only"}),
    ("gptq", {"bits": 4, "group_size": 64}),
    ("awq", {"bits": 4, "group_size": 64}),
]


def measure(folder: Path, data_dir: Path, ppl_tokens: int = 4096) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.cuda.reset_peak_memory_stats()
    with track_energy() as energy:
        model = AutoModelForCausalLM.from_pretrained(folder, device_map="cuda")
        tok = AutoTokenizer.from_pretrained(folder)
        ppl, tokens = wikitext_perplexity(model, tok, data_dir, max_tokens=ppl_tokens)
        lat = measure_latency(model, tok)
    layer = type(model.model.layers[0].self_attn.q_proj).__name__
    peak = torch.cuda.max_memory_allocated() / 2**20
    del model
    torch.cuda.empty_cache()
    return {
        "ppl": round(ppl, 3), "tokens": tokens, "decode_ms": lat.decode_ms_per_token,
        "prefill_ms": lat.prefill_ms_per_token, "device": lat.device, "cuda_peak_mib": round(peak, 1),
        "energy_j": round(energy.joules, 2), "energy_mode": energy.mode, "layer": layer,
    }  # fmt: skip


def main(data_dir: Path, work: Path, model: str, out: Path | None, smoke: bool = False) -> None:
    if not torch.cuda.is_available():
        raise SystemExit("this check needs a CUDA device: none is visible here")
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}", flush=True)
    base = materialize(resolve_model(model), work / "models")
    ppl_tokens = 256 if smoke else 4096
    rows: list[dict[str, Any]] = [
        {"method": "float32", "params": {}, "ok": True, **measure(base, data_dir, ppl_tokens)}
    ]
    print(json.dumps(rows[-1]), flush=True)
    for method, params in CHECKS[:1] if smoke else CHECKS:
        target = work / f"{method}-{'-'.join(f'{k}{v}' for k, v in params.items())}"
        try:
            t0 = time.perf_counter()
            quantize_to_folder(
                QuantizeJob.parse(method, params, str(base), str(target), str(data_dir), 128, 512, 0, "cuda")
            )
            row = {"method": method, "params": params, "ok": True, "quantize_s": round(time.perf_counter() - t0, 1)}
            rows.append(row | measure(target, data_dir, ppl_tokens))
        except Exception as exc:
            rows.append(
                {"method": method, "params": params, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
            )
            traceback.print_exc()
        print(json.dumps(rows[-1]), flush=True)
    if out is not None:
        out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "greenai-gpu-check")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ["OUT"]) / "gpu_check.json" if "OUT" in os.environ else None
    )
    parser.add_argument("--smoke", action="store_true", help="float32 and one method, 256 tokens (use a tiny --model)")
    args = parser.parse_args()
    main(args.data_dir, args.work_dir, args.model, None if args.smoke else args.out, args.smoke)
