"""Each benchmark on items from the real data files: a right answer scores 1, a wrong one 0 (answers
checked by hand), then a short run on the tiny model through the evaluation job."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from greenai.services.evaluation.benchmarks import humaneval
from greenai.services.evaluation.benchmarks.auto import BENCHMARKS, benchmark
from greenai.services.evaluation.benchmarks.base import UnknownBenchmarkError, seeded_subset, write_docs
from greenai.services.evaluation.benchmarks.wikitext import articles
from greenai.services.evaluation.job import evaluate_folder
from tests.scripted_lm import ScriptedLM, per_doc


def score(name: str, docs: list[dict[str, Any]], lm: ScriptedLM, tmp_path: Path) -> dict[str, Any]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    config = benchmark(name).task_config(write_docs(docs, tmp_path))
    out = simple_evaluate(model=lm, tasks=[config], task_manager=TaskManager(include_defaults=False), log_samples=True)
    assert out is not None
    return out


def picks(*pairs: tuple[str, str]) -> Any:
    """Prefer the continuation `cont` for the item whose prompt ends with text containing `key`."""

    def prefer(context: str, continuation: str) -> bool:
        tail = context[-400:]
        return any(key in tail and continuation.strip() == cont for key, cont in pairs)

    return prefer


# (benchmark, picks for the first two items: the first right, the second wrong) — checked by hand
MULTIPLE_CHOICE = [
    ("arc_easy", [("photosynthesis", "Sunlight is the source of energy for nearly all ecosystems."),
                  ("mold spores", "rubber gloves")]),
    ("commonsense_qa", [("revolving door", "A"), ("aim to do at work", "C")]),
    ("truthfulqa_mc1", [("pomegranate", "Nothing in particular happens when you eat a pomegranate."),
                        ("number of people living today", "The living outnumber the dead.")]),
    ("mmlu", [("sqrt(18)", "B"), ("(1, 2, 5, 4)(2, 3)", "B")]),  # degree 4 = B; index of a 5-cycle is 24 = C
    ("hellaswag", [("sitting on a roof", "starts pulling up roofing on a roof."),
                   ("walks to a barbell", "swings and lands in her arms.")]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "choose"), MULTIPLE_CHOICE, ids=[m[0] for m in MULTIPLE_CHOICE])
def test_multiple_choice_scores_right_1_and_wrong_0(
    name: str, choose: list[tuple[str, str]], data_dir: Path, tmp_path: Path
) -> None:
    docs = benchmark(name).documents(data_dir)[:2]
    out = score(name, docs, ScriptedLM(prefer=picks(*choose)), tmp_path)
    assert per_doc(out, f"greenai_{name}", "acc") == [1.0, 0.0]


def test_winogrande_compares_the_two_filled_in_contexts(data_dir: Path, tmp_path: Path) -> None:
    docs = benchmark("winogrande").documents(data_dir)[:2]  # same sentence: "easier cases" -> Maria, "harder" -> Sarah

    def prefer(context: str, continuation: str) -> bool:
        return context.endswith("so Maria")

    out = score("winogrande", docs, ScriptedLM(prefer=prefer), tmp_path)
    assert per_doc(out, "greenai_winogrande", "acc") == [1.0, 0.0]


def test_truthfulqa_mc2_is_the_probability_mass_on_true_answers(data_dir: Path, tmp_path: Path) -> None:
    doc = benchmark("truthfulqa_mc2").documents(data_dir)[0]  # pomegranate: 3 true answers, then 3 false
    assert doc["mc2_targets"]["labels"] == [1, 1, 1, 0, 0, 0]
    true_answers = doc["mc2_targets"]["choices"][:3]
    out = score("truthfulqa_mc2", [doc], ScriptedLM(prefer=lambda c, x: x.strip() in true_answers), tmp_path)
    # three answers at log-prob 0 and three at -10: mass 3 / (3 + 3e^-10)
    assert per_doc(out, "greenai_truthfulqa_mc2", "acc") == [pytest.approx(1 / (1 + math.exp(-10)))]
    out = score("truthfulqa_mc2", [doc], ScriptedLM(prefer=lambda c, x: x.strip() not in true_answers), tmp_path)
    assert per_doc(out, "greenai_truthfulqa_mc2", "acc")[0] < 1e-4


def test_gsm8k_extracts_the_last_number_flexibly(data_dir: Path, tmp_path: Path) -> None:
    docs = benchmark("gsm8k").documents(data_dir)[:2]  # Janet's ducks: 18; the robe: 3

    def generate(context: str) -> str:
        if "Janet" in context[-600:]:
            return " She has 16 - 3 - 4 = 9 eggs left. 9 * $2 = $18. The answer is $18."
        return " It takes 2 + 2 = 4 bolts. The answer is 4."

    lm = ScriptedLM(generate=generate)
    out = score("gsm8k", docs, lm, tmp_path)
    assert per_doc(out, "greenai_gsm8k", "exact_match", "flexible-extract") == [1.0, 0.0]
    assert lm.contexts[0].count("Q: ") == 9  # eight chain-of-thought exemplars, then the question
    assert "The answer is 6." in lm.contexts[0]


def test_bbh_scores_what_follows_the_answer_is(data_dir: Path, tmp_path: Path) -> None:
    docs = benchmark("bbh:boolean_expressions").documents(data_dir)[:2]  # False, then True
    lm = ScriptedLM(generate=lambda context: " not True is False. So the answer is False.")
    out = score("bbh:boolean_expressions", docs, lm, tmp_path)
    assert per_doc(out, "greenai_bbh:boolean_expressions", "exact_match", "get-answer") == [1.0, 0.0]
    assert "Evaluate the result of a random Boolean expression." in lm.contexts[0]
    assert lm.contexts[0].count("Let's think step by step.") == 4  # three shots and the question
    assert "canary" not in lm.contexts[0]


def test_bbh_covers_all_27_tasks(data_dir: Path) -> None:
    docs = benchmark("bbh").documents(data_dir)
    assert len({d["subtask"] for d in docs}) == 27 and len(docs) == 6511


def test_humaneval_runs_the_tests_in_the_sandbox(data_dir: Path, tmp_path: Path) -> None:
    raw = json.loads(humaneval.gzip.open(data_dir / "humaneval" / "HumanEval.jsonl.gz", "rt").readline())
    doc = benchmark("humaneval").documents(data_dir)[0]
    assert humaneval.score(doc, raw["canonical_solution"]) == {"pass@1": 1.0}
    assert humaneval.score(doc, "    return False\n") == {"pass@1": 0.0}
    lm = ScriptedLM(generate=lambda context: raw["canonical_solution"] if "has_close_elements" in context else "")
    docs = benchmark("humaneval").documents(data_dir)[:2]
    out = score("humaneval", docs, lm, tmp_path)
    assert per_doc(out, "greenai_humaneval", "pass@1") == [1.0, 0.0]


def test_wikitext_is_word_perplexity_over_whole_articles(data_dir: Path, tmp_path: Path) -> None:
    docs = benchmark("wikitext2").documents(data_dir)
    assert len(docs) == 62  # the 62 articles of WikiText-2's test split
    assert docs[0]["page"].startswith(" = Robert Boulter = ")
    from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer

    out = score("wikitext2", docs[:2], ScriptedLM(), tmp_path)
    # the LM spends ln 10 a word of the text it is shown; lm-eval divides by the words of the raw page
    words = lambda text: len(re.split(r"\s+", text))  # noqa: E731
    shown = sum(words(wikitext_detokenizer(d)) for d in docs[:2])
    raw = sum(words(d["page"]) for d in docs[:2])
    expected = math.exp(math.log(10) * shown / raw)
    assert out["results"]["greenai_wikitext2"]["word_perplexity,none"] == pytest.approx(expected)
    assert not benchmark("wikitext2").bounded and not benchmark("wikitext2").higher_is_better


def test_articles_split_at_top_level_headings_only() -> None:
    text = " = A = \n x \n = = Sub = = \n y \n = B = \n z \n"
    assert [a.split("\n")[0] for a in articles(text)] == [" = A = ", " = B = "]


def test_seeded_subset_is_reproducible_and_spread() -> None:
    docs = [{"i": i} for i in range(1000)]
    a, b = seeded_subset(docs, 20, 7), seeded_subset(docs, 20, 7)
    assert a == b and a != seeded_subset(docs, 20, 8)
    assert [d["i"] for d in a] == sorted(d["i"] for d in a) and a[-1]["i"] > 500
    assert seeded_subset(docs, None, 0) is docs


def test_unknown_benchmarks_and_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(UnknownBenchmarkError, match="gsm8k"):
        benchmark("imaginary")
    with pytest.raises(FileNotFoundError, match=r"test\.jsonl"):
        benchmark("gsm8k").documents(tmp_path, allow_hub=False)


def test_every_builtin_benchmark_but_bbh_has_a_hub_source() -> None:
    assert {n for n, b in BENCHMARKS.items() if b.hub is None} == {"bbh"}


def test_hub_rows_normalise_to_the_local_schema() -> None:
    arc = BENCHMARKS["arc_easy"].hub
    row = {"id": "x", "question": "Q?", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "B"}
    assert arc is not None and arc.normalise(row)["choices"]["label"] == ["A", "B"]
    wino = BENCHMARKS["winogrande"].hub
    row = {"sentence": "Sarah beat Maria so _ won.", "option1": "Sarah", "option2": "Maria", "answer": "1"}
    assert wino is not None and wino.normalise(row) == {
        "contexts": ["Sarah beat Maria so Sarah", "Sarah beat Maria so Maria"], "continuation": "won.", "gold": 0,
    }  # fmt: skip
    tqa = BENCHMARKS["truthfulqa_mc1"].hub
    row = {"question": "q", "mc1_targets": {"choices": ["t", "f"], "labels": [1, 0]},
           "mc2_targets": {"choices": ["t", "f"], "labels": [1, 0]}}  # fmt: skip
    assert tqa is not None and tqa.normalise(row)["mc1_targets"] == {"choices": ["t", "f"], "labels": [1, 0]}


TINY_RUNS = ["arc_challenge", "gsm8k", "commonsense_qa", "truthfulqa_mc2", "humaneval", "bbh", "mmlu", "hellaswag",
             "winogrande"]  # fmt: skip


@pytest.mark.parametrize("name", TINY_RUNS)
def test_tiny_model_runs_each_benchmark_from_the_data_dir(
    name: str, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    r = evaluate_folder(str(tiny_model_dir), name, str(data_dir), 2, 0, str(tmp_path), max_gen_toks=8)
    assert (r["n"] == 2 and r["accuracy"] in (0.0, 0.5, 1.0)) or name == "truthfulqa_mc2"
    assert 0.0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 1.0


def test_secondary_benchmarks_are_scored_alongside(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    r = evaluate_folder(str(tiny_model_dir), "arc_easy", str(data_dir), 2, 0, str(tmp_path), ("wikitext2",))
    (ppl,) = r["secondary"]
    assert ppl["task"] == "wikitext2" and ppl["metric"] == "word_perplexity" and ppl["value"] > 1
    assert ppl["higher_is_better"] is False and ppl["ci_low"] is None


def test_a_perplexity_benchmark_cannot_be_the_target(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secondary"):
        evaluate_folder(str(tiny_model_dir), "wikitext2", str(data_dir), 2, 0, str(tmp_path))
