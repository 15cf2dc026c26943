"""Entry point of the `triage` command: parse arguments, run one command, one-line errors."""

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from uuid import UUID

from pydantic import SecretStr

from triage_pipeline.application.batches import (
    MAX_BATCH_SIZE,
    BatchStatusQuery,
    CreateBatch,
    CreateBatchCommand,
    GetBatchProgress,
)
from triage_pipeline.bootstrap import Container
from triage_pipeline.cli import demo, evaluate, examples, prompts, tickets, webhooks, worker
from triage_pipeline.cli.demo import DemoError
from triage_pipeline.domain.exceptions import DomainError
from triage_pipeline.infrastructure import webhook_key
from triage_pipeline.infrastructure.database import embedded_server, resolve_database_url
from triage_pipeline.infrastructure.embedded_postgres import EmbeddedPostgresError
from triage_pipeline.infrastructure.logging import configure_logging
from triage_pipeline.infrastructure.migrations import current_revision, downgrade_to, upgrade_to_head
from triage_pipeline.infrastructure.settings import Settings, SettingsError, load_settings


class CommandError(Exception):
    """A command failed for a reason the user can act on."""


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """Start the whole service in the foreground."""
    from triage_pipeline.cli.supervisor import StartupError, Supervisor

    supervisor = Supervisor(settings)
    try:
        supervisor.start()
    except (StartupError, EmbeddedPostgresError) as exc:
        supervisor.stop()
        raise CommandError(str(exc)) from None
    except BaseException:
        supervisor.stop()
        raise
    code = supervisor.wait()
    supervisor.stop()
    return code


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    """Start, stop, inspect or migrate the database."""
    configured = settings.configured_database_url()
    if args.action in ("up", "down") and configured is not None:
        raise CommandError("DATABASE_URL / DB_HOST is set: the embedded server is not used")
    if args.action == "up":
        server = embedded_server(settings)
        server.start()
        server.ensure_database(settings.db_name)
        print(f"embedded PostgreSQL running on {server.host}:{server.port} (data in {server.data_dir})")
    elif args.action == "down":
        embedded_server(settings).stop()
        print("embedded PostgreSQL stopped")
    elif args.action == "status":
        if configured is None:
            port = embedded_server(settings).running_port()
            print(f"embedded PostgreSQL: {'running on port ' + str(port) if port else 'stopped'}")
            if port is None:
                return 1
        url = resolve_database_url(settings)
        print(f"schema revision: {current_revision(url) or 'none (run `triage db migrate`)'}")
    elif args.action == "migrate":
        url = resolve_database_url(settings)
        if args.to == "head":
            upgrade_to_head(url)
        else:
            downgrade_to(url, args.to)
        print(f"schema revision: {current_revision(url)}")
    return 0


def cmd_batch(settings: Settings, args: argparse.Namespace) -> int:
    """Create a batch or show its progress."""
    container = Container(settings)
    try:
        if args.action == "create":
            created = container.use(CreateBatch).execute(CreateBatchCommand(max_items=args.max_items))
            if created is None:
                print(json.dumps({"status": "EMPTY", "batch": None, "total_items": 0}))
            else:
                batch = {"id": str(created.batch.id), "total_items": created.batch.total_items}
                print(json.dumps({"status": "QUEUED", "batch": batch}))
        else:
            progress = container.use(GetBatchProgress).execute(BatchStatusQuery(args.batch_id))
            print(
                json.dumps(
                    {
                        "id": str(progress.batch.id),
                        "status": progress.batch.status.value,
                        "total_items": progress.batch.total_items,
                        "items": {k.value: v for k, v in progress.counts.items()},
                        "started_at": progress.batch.started_at.isoformat(),
                        "finished_at": progress.finished_at.isoformat() if progress.finished_at else None,
                        "queued_ahead": progress.queued_ahead,
                    }
                )
            )
    finally:
        container.close()
    return 0


def _batch_size(value: str) -> int:
    number = int(value)
    if not 1 <= number <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH_SIZE}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triage", description="Ticket Triage: AI triage of support tickets.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the database, LLM, API and Dagster; Ctrl-C stops them all")
    run.set_defaults(handler=cmd_run)

    db = sub.add_parser("db", help="the database: up | down | status | migrate")
    db.add_argument("action", choices=["up", "down", "status", "migrate"])
    db.add_argument("--to", default="head", help="migrate: target revision (default head; 'base' empties it)")
    db.set_defaults(handler=cmd_db)

    batch = sub.add_parser("batch", help="batches: create | status ID")
    batch_sub = batch.add_subparsers(dest="action", required=True)
    create = batch_sub.add_parser("create", help="claim eligible jobs into a new batch")
    create.add_argument("--max-items", type=_batch_size, default=1000)
    status = batch_sub.add_parser("status", help="progress of a batch")
    status.add_argument("batch_id", type=UUID)
    batch.set_defaults(handler=cmd_batch)

    tickets.add_parsers(sub)
    examples.add_parsers(sub)
    webhooks.add_parsers(sub)
    prompts.add_parsers(sub)
    evaluate.add_parsers(sub)
    demo.add_parser(sub)
    worker.add_parser(sub)
    return parser


def dispatch(settings: Settings, args: argparse.Namespace) -> int:
    """Run the handler the parser chose, with a container when it needs one."""
    if hasattr(args, "handler"):
        handler: Callable[[Settings, argparse.Namespace], int] = args.handler
        return handler(settings, args)
    if hasattr(args, "settings_handler"):
        settings_handler: Callable[[Settings, argparse.Namespace], int] = args.settings_handler
        return settings_handler(settings, args)
    container = Container(settings)
    try:
        container_handler: Callable[[Container, argparse.Namespace], int] = args.container_handler
        return container_handler(container, args)
    finally:
        container.close()


def with_local_webhook_key(settings: Settings) -> Settings:
    """The settings with the key `triage run` stored (`.triage_webhook_key`) when WEBHOOK_SECRETS_KEY is unset,
    so `triage webhooks ...` in another terminal opens the same secrets as the running service."""
    if settings.webhook_secrets_key is not None:
        return settings
    key = webhook_key.local_webhook_key(settings, webhook_key.WEBHOOK_KEY_FILE)
    return settings.model_copy(update={"webhook_secrets_key": SecretStr(key)}) if key else settings


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; failures print one line on stderr and exit non-zero."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        # `triage run` prints its own summary of the start; the INFO lines of its steps (migrations, the
        # embedded server) would repeat it, so they show only with LOG_LEVEL=DEBUG.
        configure_logging("DEBUG" if args.command == "run" and settings.log_level == "DEBUG" else "WARNING")
        if args.command == "webhooks":
            settings = with_local_webhook_key(settings)
        return dispatch(settings, args)
    except (SettingsError, CommandError, EmbeddedPostgresError, DomainError, ValueError, DemoError) as exc:
        print(f"triage: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
