"""A pipeline process for crash tests: runs the real `triage_job` on one batch, then exits.

    python -m tests.support.triage_worker --database-url URL --llm-url URL --batch-id ID

It prints `WORKER_STARTED pid=<pid>` once its imports are done, so a test can kill it (SIGKILL) in the
middle of the batch and then check what recovery makes of what it left behind.
"""

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Run one batch through `triage_job.execute_in_process` on an ephemeral Dagster instance."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.triage_worker", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--llm-url", required=True)
    parser.add_argument("--batch-id", required=True)
    parser.add_argument("--jobs-per-chunk", type=int, default=2)
    parser.add_argument("--llm-concurrency", type=int, default=2)
    parser.add_argument("--read-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    from dagster import DagsterInstance

    from triage_pipeline.defs.resources import DatabaseResource, LlmResource, TriageServices
    from triage_pipeline.defs.triage.job import triage_job

    services = TriageServices(
        database=DatabaseResource(url=args.database_url),
        llm=LlmResource(base_url=args.llm_url, model="fake-model", read_timeout_s=args.read_timeout),
    )
    config = {
        "batch_id": args.batch_id,
        "jobs_per_chunk": args.jobs_per_chunk,
        "llm_concurrency": args.llm_concurrency,
    }
    print(f"WORKER_STARTED pid={os.getpid()}", flush=True)
    with DagsterInstance.ephemeral() as instance:
        result = triage_job.execute_in_process(
            run_config={"ops": {"plan_batch": {"config": config}, "triage_chunk": {"config": config}}},
            resources={"services": services},
            instance=instance,
            raise_on_error=False,
        )
    print(f"WORKER_FINISHED success={result.success}", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
