"""lm-eval loglikelihood throughput against the limit: a raw batched forward pass over the same tokens.

Runs ARC-Easy items through lm-eval's HFLM on SmolLM2-135M, counts the tokens lm-eval scored, then
times plain batched forward passes over exactly those token sequences. Prints both and the ratio.

    python bench/eval_throughput.py --data-dir ../shared/data [--items 100]
    python bench/eval_throughput.py --smoke --model build/test-cache/tiny-llama   # seconds: 4 items, batch 2
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def main(data_dir: Path, work_dir: Path, items: int, batch_size: int, model_ref: str) -> None:
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from greenai.services.evaluation.job import prepare_task
    from greenai.shared.model_io import materialize, resolve_model

    torch.set_num_threads(1)
    folder = materialize(resolve_model(model_ref), work_dir / "models")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)

    sequences: list[list[int]] = []
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    original = lm._model_call

    def recording_call(inps: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        sequences.extend(row.tolist() for row in inps)
        return original(inps, *args, **kwargs)

    lm._model_call = recording_call  # type: ignore[method-assign]
    scoring = lm.loglikelihood
    in_scoring = [0.0]

    def timed_loglikelihood(requests: list[object], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        t = time.perf_counter()
        out = scoring(requests, disable_tqdm=disable_tqdm)  # type: ignore[arg-type]
        in_scoring[0] += time.perf_counter() - t
        return out

    lm.loglikelihood = timed_loglikelihood  # type: ignore[method-assign]
    task = prepare_task("arc_easy", str(data_dir), items, 0, str(work_dir / "cache"))
    t0 = time.perf_counter()
    simple_evaluate(model=lm, tasks=[task.config], task_manager=TaskManager(include_defaults=False), log_samples=False)
    lm_eval_s = time.perf_counter() - t0
    tokens = sum(len(s) for s in sequences)  # padded batches, as lm-eval sends them

    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(sequences), batch_size):
            batch = sequences[i : i + batch_size]
            width = max(len(s) for s in batch)
            ids = torch.tensor([s + [0] * (width - len(s)) for s in batch])
            model(input_ids=ids)
    raw_s = time.perf_counter() - t0
    print(f"items {items}, forward calls' tokens {tokens:,} (batch {batch_size})")
    scored_s = in_scoring[0]
    print(f"lm-eval end to end      {tokens / lm_eval_s:>10,.0f} tokens/s   ({lm_eval_s:.1f} s, incl. task setup)")
    print(f"lm-eval scoring only    {tokens / scored_s:>10,.0f} tokens/s   ({scored_s:.1f} s in loglikelihood)")
    print(f"raw batched forward     {tokens / raw_s:>10,.0f} tokens/s   ({raw_s:.1f} s)")
    print(f"ratio, end to end       {raw_s / lm_eval_s:>10.0%}   of the raw forward pass")
    print(f"ratio, scoring only     {raw_s / scored_s:>10.0%}   of the raw forward pass")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--work-dir", type=Path, default=Path("build/bench-compression"))
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default="smollm2-135m", help="an alias, a .gguf file or a model folder")
    parser.add_argument("--smoke", action="store_true", help="4 items, batch 2 (use with a tiny --model)")
    args = parser.parse_args()
    if args.smoke:
        args.items, args.batch_size = 4, 2
    main(args.data_dir, args.work_dir, args.items, args.batch_size, args.model)
