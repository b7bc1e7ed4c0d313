"""Every benchmark family once on the real SmolLM2-135M-Instruct, in reduced form (a seeded subset,
shorter generations), through the evaluation agent's own job code: the numbers a 2-core CPU gives,
and what each costs.

    python bench/benchmarks_smollm2.py --data-dir ../shared/data [--items 30] [--gen-items 8]
    python bench/benchmarks_smollm2.py --smoke --model build/test-cache/tiny-llama   # seconds: 2 benchmarks, 2 items
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from greenai.services.evaluation.job import evaluate_folder
from greenai.shared.model_io import materialize, resolve_model

MULTIPLE_CHOICE = ["arc_easy", "arc_challenge", "commonsense_qa", "truthfulqa_mc1", "truthfulqa_mc2", "mmlu",
                   "hellaswag", "winogrande"]  # fmt: skip
GENERATIVE = {"gsm8k": 192, "bbh": 128, "humaneval": 192}  # max new tokens, cut from 256 for time


def main(
    data_dir: Path, items: int, gen_items: int, wikitext_articles: int, work: Path, model_ref: str, smoke: bool
) -> None:
    console = Console(width=150)
    model = materialize(resolve_model(model_ref), work / "models")
    table = Table(title=f"{model_ref} (float32, CPU), seeded subsets (seed 0)")
    for col in ["benchmark", "metric", "score", "95 % CI", "n", "wall s"]:
        table.add_column(col, justify="right")
    # smoke: multiple choice runs once, under the wikitext2 row below (arc_easy is its primary task)
    choice, generative = ([], {"gsm8k": 4}) if smoke else (MULTIPLE_CHOICE, GENERATIVE)
    runs = [(b, items, None, ()) for b in choice] + [(b, gen_items, t, ()) for b, t in generative.items()]
    for name, n, gen, secondary in runs:
        t0 = time.perf_counter()
        r = evaluate_folder(
            str(model), name, str(data_dir), n, 0, str(work / "cache"), secondary, gen, measure_speed=not smoke
        )
        wall = time.perf_counter() - t0
        table.add_row(name, r["metric"], f"{r['accuracy']:.3f}", f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]",
                      str(r["n"]), f"{wall:.0f}")  # fmt: skip
        console.print(f"{name}: {r['accuracy']:.3f} (n={r['n']}, {wall:.0f} s)")
    t0 = time.perf_counter()
    # a secondary benchmark takes the run's subset size too: here `wikitext_articles` whole articles
    r = evaluate_folder(
        str(model), "arc_easy", str(data_dir), wikitext_articles, 0, str(work / "cache"), ("wikitext2",),
        measure_speed=not smoke,
    )  # fmt: skip
    ppl = r["secondary"][0]
    table.add_row("wikitext2 (secondary)", ppl["metric"], f"{ppl['value']:.2f}", "", f"{ppl['n']} articles",
                  f"{time.perf_counter() - t0:.0f}")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--gen-items", type=int, default=8)
    parser.add_argument("--wikitext-articles", type=int, default=6)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "greenai-bench")
    parser.add_argument("--model", default="smollm2-135m", help="an alias, a .gguf file or a model folder")
    parser.add_argument("--smoke", action="store_true", help="gsm8k on 1 item, arc_easy + wikitext2 on 1; no latency")
    args = parser.parse_args()
    if args.smoke:
        args.items, args.gen_items, args.wikitext_articles = 2, 1, 1
    main(args.data_dir, args.items, args.gen_items, args.wikitext_articles, args.work_dir, args.model, args.smoke)
