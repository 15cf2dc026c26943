"""How the answer would have been settled with other model weights: a sweep over stored evaluation runs.

Every evaluation run keeps, per ticket, what the settling used (`report.answers[].settled`: the model's label,
its probabilities of each label, the neighbours' shares, the example bank classifier's probabilities). This
re-settles those tickets with other weights (`decide_label`, as production does): the model's weight with the
bank's as production has it, then the bank's with the model's as production has it. Per pair of weights it
prints category and priority accuracy, tickets won and lost against the vote alone, the ECE and the precision /
coverage at a few review thresholds (cross-validated calibration, as `triage eval` reports them), and the
lowest threshold reaching the target precision. No LLM call: the model's answers are those of the runs. A run
stored before the bank classifier has no bank probabilities: its bank weights change nothing.

The weights and the review thresholds of versions 4 and 5 (`domain/confidence.py`, migrations 0014, 0016) were
chosen this way on the 600 starter examples, never on the sample the README reports:

    triage eval triage_pipeline/data/starter_examples.jsonl --prompt-version 5 --concurrency 1   # ~45 min offline
    .venv/bin/python bench/settling_weights.py starter_examples.jsonl --prompt-version 5

Arguments name the evaluated files (as `triage eval` stores them: the file name); the newest run of the
version on each file is used, and several files are pooled. Reads DATABASE_URL (or DB_*), as the CLI does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage_pipeline.bootstrap import Container  # noqa: E402
from triage_pipeline.domain.calibration import (  # noqa: E402
    ScoredAnswer,
    cross_validated,
    expected_calibration_error,
    lowest_threshold_for,
    split_at,
)
from triage_pipeline.domain.confidence import (  # noqa: E402
    CATEGORY_BANK_WEIGHT,
    CATEGORY_MODEL_WEIGHT,
    PRIORITY_BANK_WEIGHT,
    PRIORITY_MODEL_WEIGHT,
    decide_label,
)
from triage_pipeline.domain.example import NeighbourVote  # noqa: E402
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME  # noqa: E402
from triage_pipeline.domain.triage_answer import Priority  # noqa: E402
from triage_pipeline.infrastructure.settings import Settings  # noqa: E402

MODEL_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
BANK_WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.7)
THRESHOLDS = (0.5, 0.6, 0.7, 0.8)
FIELDS = {
    # field: (the model's label, its probability, its distribution, the neighbours' shares, the bank's) in the log
    "category": (
        "model_category",
        "category_probability",
        "category_distribution",
        "neighbour_shares",
        "bank_category",
    ),
    "priority": (
        "model_priority",
        "priority_probability",
        "priority_distribution",
        "neighbour_priority_shares",
        "bank_priority",
    ),
}
PRODUCTION = {
    "category": (CATEGORY_MODEL_WEIGHT, CATEGORY_BANK_WEIGHT),
    "priority": (PRIORITY_MODEL_WEIGHT, PRIORITY_BANK_WEIGHT),
}


def settle(
    settled: dict[str, Any], field: str, weights: tuple[float, float], vocabulary: tuple[str, ...]
) -> tuple[str, float]:
    label, probability, distribution, shares, bank = FIELDS[field]
    vote = NeighbourVote(settled[shares]) if settled.get(shares) else None
    model_weight, bank_weight = weights
    decision = decide_label(
        settled[label],
        settled.get(probability),
        vote,
        vocabulary,
        model_weight,
        settled.get(distribution),
        settled.get(bank),
        bank_weight,
    )
    return decision.label, decision.confidence


def weight_pairs(field: str) -> list[tuple[float, float]]:
    """The model's weights beside the bank's production weight, then the bank's beside the model's."""
    model, bank = PRODUCTION[field]
    pairs = [(m, bank) for m in MODEL_WEIGHTS] + [(model, b) for b in BANK_WEIGHTS]
    return list(dict.fromkeys(pairs))


def vote_winner(settled: dict[str, Any], field: str) -> str | None:
    shares = settled.get(FIELDS[field][3]) or {}
    return max(shares, key=shares.__getitem__) if shares else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", help="evaluated file names, as stored by triage eval")
    parser.add_argument("--prompt-version", type=int, required=True)
    parser.add_argument("--target-precision", type=float, default=0.87)
    args = parser.parse_args()

    container = Container(Settings())
    with container.uow() as uow:
        runs = uow.evaluations.list(DEFAULT_PROMPT_NAME, [args.prompt_version])
        prompt = uow.prompts.by_version(DEFAULT_PROMPT_NAME, args.prompt_version)
    if prompt is None:
        print(f"settling_weights: no prompt version {args.prompt_version}", file=sys.stderr)
        return 2
    answers: list[dict[str, Any]] = []
    for dataset in args.datasets:
        run = next((r for r in runs if r.dataset == dataset), None)  # newest first
        if run is None:
            print(f"settling_weights: no evaluation of version {args.prompt_version} on {dataset}", file=sys.stderr)
            return 2
        answers += run.report.get("answers", [])
    vocabularies = {"category": prompt.categories, "priority": tuple(p.value for p in Priority)}
    total = len(answers)
    settled = [a for a in answers if a.get("settled")]
    invalid = total - len(settled)
    print(f"{total} tickets of {', '.join(args.datasets)} (version {args.prompt_version}), {invalid} invalid")
    for field in FIELDS:
        vote_right = sum(vote_winner(a["settled"], field) == a["gold"].get(field) for a in settled)
        print(f"\n{field}: the vote alone {vote_right / total:.1%}")
        for weights in weight_pairs(field):
            scored, won, lost = [], 0, 0
            for a in settled:
                label, confidence = settle(a["settled"], field, weights, vocabularies[field])
                right = label == a["gold"].get(field)
                by_vote = vote_winner(a["settled"], field) == a["gold"].get(field)
                won += right and not by_vote
                lost += by_vote and not right
                scored.append(ScoredAnswer(confidence, right))
            accuracy = sum(s.correct for s in scored) / total
            line = f"  model {weights[0]:<4} bank {weights[1]:<4}  accuracy {accuracy:6.1%}  +{won}/-{lost}"
            if field == "category":
                calibrated = cross_validated(scored)
                line += f"  ECE {expected_calibration_error(calibrated):.3f} "
                for threshold in THRESHOLDS:
                    split = split_at(calibrated, threshold, invalid)
                    line += f"  t={threshold}: {split.precision or 0:.1%} at {split.coverage:.0%}"
                best = lowest_threshold_for(calibrated, args.target_precision, invalid)
                line += f"  | >= {args.target_precision:.0%} from " + (
                    f"t={best.threshold:.3f} at {best.coverage:.0%}" if best else "no threshold"
                )
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
