"""One short check of every CUDA path, for a lent GPU (a few minutes on an H100).

Quantizes the real SmolLM2-135M with each method on CUDA, reloads the artifact on CUDA, and
prints perplexity on 4k WikiText-2 tokens, decode ms/token and the kernel class that ran.

    python bench/gpu_check.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import traceback
from pathlib import Path

import torch

from greenai.services.evaluation.latency import measure_latency
from greenai.services.evaluation.perplexity import wikitext_perplexity
from greenai.services.quantization.job import quantize_to_folder
from greenai.shared.model_io import materialize, resolve_model

CHECKS = [
    ("autoround", {"bits": 4, "group_size": 64}),
    ("gptq", {"bits": 4, "group_size": 64}),
    ("awq", {"group_size": 64}),
    ("bnb_int8", {}),
    ("bnb_4bit", {"quant_type": "nf4"}),
    ("torchao_int8", {"scheme": "dynamic"}),
]


def main(data_dir: Path, work: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert torch.cuda.is_available(), "this check needs a CUDA device"
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    base = materialize(resolve_model("smollm2-135m"), work / "models")
    rows = []
    for method, params in CHECKS:
        target = work / f"{method}-{'-'.join(f'{k}{v}' for k, v in params.items())}"
        try:
            t0 = time.perf_counter()
            quantize_to_folder(method, params, str(base), str(target), str(data_dir), 64, 512, 0, "cuda")
            quant_s = time.perf_counter() - t0
            model = AutoModelForCausalLM.from_pretrained(target, device_map="cuda")
            tok = AutoTokenizer.from_pretrained(target)
            ppl, _ = wikitext_perplexity(model, tok, data_dir, max_tokens=4096)
            lat = measure_latency(model, tok)
            kernel = type(model.model.layers[0].self_attn.q_proj).__name__
            rows.append({"method": method, "params": params, "ok": True, "ppl": round(ppl, 2), "quantize_s": round(quant_s, 1),
                         "decode_ms": lat.decode_ms_per_token, "kernel": kernel})  # fmt: skip
            del model
            torch.cuda.empty_cache()
        except Exception as exc:
            rows.append({"method": method, "params": params, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
            traceback.print_exc()
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "greenai-gpu-check")
    args = parser.parse_args()
    main(args.data_dir, args.work_dir)
