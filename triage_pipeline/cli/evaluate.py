"""`triage eval FILE`: evaluate prompt versions on a labelled file and compare them side by side."""

import argparse
import json
import sys
from pathlib import Path

from triage_pipeline.application.corrections import CorrectionsAsLabelsQuery, ExportCorrectionsAsLabels
from triage_pipeline.application.evaluation import (
    EvaluateCommand,
    EvaluatePrompts,
    VersionResult,
    comparison_rows,
    sweep_rows,
)
from triage_pipeline.bootstrap import Container
from triage_pipeline.cli.output import print_table, progress_bar
from triage_pipeline.infrastructure.labelled_file import read_labelled, sha256_of


def print_comparison(results: list[VersionResult]) -> None:
    """Side-by-side figures, then the confusion matrices of category and priority."""
    rows = comparison_rows(results)
    print_table(
        f"evaluation on {results[0].run.dataset} ({results[0].report.items} tickets)" if results else "evaluation",
        ["figure", *(f"{r.prompt.name} v{r.prompt.version}" for r in results)],
        rows,
    )
    for result in results:
        print_table(
            f"threshold sweep, v{result.prompt.version} (category confidence; answers below go to review)",
            ["threshold", "coverage", "precision", "to review"],
            sweep_rows(result),
        )
        for name in ("category", "priority"):
            score = result.report.fields[name]
            print_table(
                f"{name} confusion, v{result.prompt.version} (rows: expected, columns: predicted)",
                ["expected", *score.labels, "invalid"],
                [[label, *row] for label, row in zip(score.labels, score.confusion, strict=True)],
            )


def cmd_eval(container: Container, args: argparse.Namespace) -> int:
    """Run the evaluation with a progress bar and print the comparison."""
    path = Path(args.file)
    items = read_labelled(path, args.limit)
    if not items:
        raise ValueError(f"{path}: no labelled ticket")
    total = len(items) * max(1, len(args.prompt_version or []))
    print(f"evaluating {len(items)} ticket(s) with model {container.llm.model}", file=sys.stderr)
    with progress_bar("evaluating", total) as bar:
        results = container.use(EvaluatePrompts).execute(
            EvaluateCommand(
                items=items,
                dataset=path.name,
                dataset_sha256=sha256_of(path),
                versions=args.prompt_version or [],
                concurrency=args.concurrency,
                target_precision=args.target_precision,
                on_progress=lambda done, _total: bar.update(bar.task_ids[0], completed=done),
            )
        )
    print_comparison(results)
    return 0


def cmd_export_corrections(container: Container, args: argparse.Namespace) -> int:
    """Corrected tickets as a labelled JSONL file, ready for `triage eval`."""
    labelled = container.use(ExportCorrectionsAsLabels).execute(CorrectionsAsLabelsQuery())
    with open(args.output, "w", encoding="utf-8") as out:
        for item in labelled:
            record = {"external_id": item.external_id, "title": item.title, "description": item.description}
            out.write(json.dumps({**record, **item.labels}, ensure_ascii=False) + "\n")
    print(f"exported {len(labelled)} corrected ticket(s) to {args.output}")
    return 0


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1")
    return value


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `eval` and `corrections export`."""
    evaluate = sub.add_parser("eval", help="evaluate prompt versions on a labelled JSONL/CSV file")
    evaluate.add_argument("file", help="labelled file (e.g. triage_pipeline/data/tickets_labelled.jsonl)")
    evaluate.add_argument("--prompt-version", type=int, action="append", help="version to evaluate (repeatable)")
    evaluate.add_argument("--limit", type=int, default=None, help="only the first N tickets")
    evaluate.add_argument("--concurrency", type=int, default=4)
    evaluate.add_argument(
        "--target-precision",
        type=_share,
        default=0.9,
        help="precision of auto-applied answers the reported lowest threshold must reach (default 0.9)",
    )
    evaluate.set_defaults(container_handler=cmd_eval)
    corrections = sub.add_parser("corrections", help="human corrections: export --output FILE")
    actions = corrections.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="corrected tickets as labelled JSONL")
    export.add_argument("--output", "-o", required=True)
    export.set_defaults(container_handler=cmd_export_corrections)
