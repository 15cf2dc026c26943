"""The heart of the product: triage one job (or many concurrently), auditing every attempt.

- `attempts.py`: the rules of an attempt (start, ask the LLM, record DONE or FAILED with its log row, only
  while the job is still RUNNING in that attempt) and the transaction that applies them to many jobs at once.
- `one_job.py`: `TriageOneJob`, one job in its own transactions.
- `coordinator.py`: `TriageJobs`, many jobs: a coordinating thread does the database work of the whole
  group while a bounded pool of threads, which never touch the database, asks the LLM; in a chunk step it
  also renews the heartbeat of its running jobs and takes over the jobs of a dead worker.
"""

from triage_pipeline.application.triage.attempts import TriageOutcome, TriageResult, error_class_of
from triage_pipeline.application.triage.coordinator import TriageJobs, TriageJobsCommand, WorkerLiveness
from triage_pipeline.application.triage.one_job import TriageJobCommand, TriageOneJob

__all__ = [
    "TriageJobCommand",
    "TriageJobs",
    "TriageJobsCommand",
    "TriageOneJob",
    "TriageOutcome",
    "TriageResult",
    "WorkerLiveness",
    "error_class_of",
]
