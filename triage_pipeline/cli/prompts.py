"""`triage prompts list|add|activate`: versions are never edited, a new version is a new row."""

import argparse
import json
from pathlib import Path

from triage_pipeline.application.prompts import (
    ActivatePrompt,
    ActivatePromptCommand,
    AddPromptCommand,
    AddPromptVersion,
    ListPrompts,
    ListPromptsQuery,
)
from triage_pipeline.bootstrap import Container
from triage_pipeline.cli.output import print_table
from triage_pipeline.domain.exceptions import PromotionRefused
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME, FEW_SHOT_K_MAX


def cmd_list(container: Container, args: argparse.Namespace) -> int:
    prompts = container.use(ListPrompts).execute(ListPromptsQuery(args.name))
    print_table(
        f"prompt {args.name!r}",
        ["version", "active", "created", "categories", "options", "few-shot", "threshold", "bank", "description"],
        [
            (
                p.version,
                "yes" if p.is_active else "",
                p.created_at.isoformat(timespec="seconds"),
                ", ".join(p.categories),
                json.dumps(dict(p.model_options)),
                p.few_shot_k,
                f"{p.review_threshold:g}",
                "yes" if p.example_bank else "",
                p.description,
            )
            for p in prompts
        ],
    )
    return 0


def cmd_add(container: Container, args: argparse.Namespace) -> int:
    """Add a version built from the active one and the given parts."""
    try:
        options = json.loads(args.options) if args.options else None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--options is not JSON: {exc}") from None
    if options is not None and not isinstance(options, dict):
        raise ValueError("--options must be a JSON object")
    prompt = container.use(AddPromptVersion).execute(
        AddPromptCommand(
            name=args.name,
            system_text=Path(args.system_file).read_text(encoding="utf-8") if args.system_file else None,
            user_template=Path(args.user_template_file).read_text(encoding="utf-8")
            if args.user_template_file
            else None,
            categories=[c.strip() for c in args.categories.split(",")] if args.categories else None,
            model_options=options,
            description=args.description,
            activate=args.activate,
            few_shot_k=args.few_shot_k,
            review_threshold=args.review_threshold,
            example_bank=args.example_bank,
        )
    )
    print(f"added {prompt.name} version {prompt.version}{' (active)' if prompt.is_active else ''}")
    return 0


def cmd_activate(container: Container, args: argparse.Namespace) -> int:
    """Activate through the promotion gate: a refusal prints the figures compared, then one error line."""
    command = ActivatePromptCommand(version=args.version, name=args.name, force=args.force)
    try:
        prompt = container.use(ActivatePrompt).execute(command)
    except PromotionRefused as exc:
        print_table(
            f"promotion gate: {args.name} v{args.version} against the active version",
            ["file", "figure", f"v{args.version}", "active", "worse"],
            [
                (
                    c["dataset"],
                    c["figure"],
                    f"{c['candidate']:.3f}",
                    f"{c['active']:.3f}",
                    "WORSE" if c["worse"] else "",
                )
                for c in exc.comparisons
            ],
        )
        raise
    forced = " (--force: a refusal of the promotion gate, if any, was overridden and recorded)" if args.force else ""
    print(f"{prompt.name} version {prompt.version} is now active{forced}")
    return 0


def _few_shot_k(value: str) -> int:
    number = int(value)
    if not 0 <= number <= FEW_SHOT_K_MAX:
        raise argparse.ArgumentTypeError(f"must be between 0 and {FEW_SHOT_K_MAX}")
    return number


def _threshold(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return number


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `prompts list|add|activate`."""
    prompts = sub.add_parser("prompts", help="prompt versions: list | add | activate VERSION")
    actions = prompts.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every version of a prompt")
    listing.add_argument("--name", default=DEFAULT_PROMPT_NAME)
    listing.set_defaults(container_handler=cmd_list)
    add = actions.add_parser("add", help="add a version (unset parts are copied from the active version)")
    add.add_argument("--name", default=DEFAULT_PROMPT_NAME)
    add.add_argument("--system-file", help="file with the system text")
    add.add_argument("--user-template-file", help="file with the user template (must contain {ticket})")
    add.add_argument("--categories", help="comma-separated category vocabulary")
    add.add_argument("--options", help='model options as JSON, e.g. {"temperature": 0, "num_predict": 256}')
    add.add_argument("--description", default="")
    add.add_argument("--activate", action="store_true", help="activate the new version at once")
    add.add_argument(
        "--few-shot-k",
        type=_few_shot_k,
        default=None,
        help=f"labelled examples shown per ticket, 0..{FEW_SHOT_K_MAX} (default: the active version's)",
    )
    add.add_argument(
        "--review-threshold",
        type=_threshold,
        default=None,
        help="answers with a lower confidence wait for review, 0..1 (default: the active version's)",
    )
    add.add_argument(
        "--example-bank",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="settle answers with the example bank's classifier too (default: as the active version)",
    )
    add.set_defaults(container_handler=cmd_add)
    activate = actions.add_parser("activate", help="make a version the active one")
    activate.add_argument("version", type=int)
    activate.add_argument("--name", default=DEFAULT_PROMPT_NAME)
    activate.add_argument(
        "--force",
        action="store_true",
        help="activate even when it evaluated worse than the active version (the override is recorded)",
    )
    activate.set_defaults(container_handler=cmd_activate)
