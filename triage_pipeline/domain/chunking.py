"""How a batch is cut into chunks, one Dagster step each (README "Scaling out").

A batch of N jobs is cut into ceil(N / jobs_per_chunk) chunks rounded up to a multiple of `workers` (so at
least one per worker), never more than N, of sizes that differ by at most one: every worker gets work however
small the batch, the workers finish their last round together (5 chunks for 4 workers would leave three idle
for a whole chunk), and no chunk is larger than `jobs_per_chunk`. More chunks than workers cost a step each
(small next to an LLM call) and make the work a dead worker loses smaller.
"""

import math
from collections.abc import Sequence


def chunk_count(total: int, jobs_per_chunk: int, workers: int) -> int:
    """How many chunks a batch of `total` jobs is cut into."""
    if jobs_per_chunk < 1 or workers < 1:
        raise ValueError("jobs_per_chunk and workers must be at least 1")
    if total <= 0:
        return 0
    rounds = math.ceil(math.ceil(total / jobs_per_chunk) / workers)
    return min(total, rounds * workers)


def split_into_chunks[T](items: Sequence[T], jobs_per_chunk: int, workers: int) -> list[list[T]]:
    """`items` in order, cut into `chunk_count` chunks whose sizes differ by at most one."""
    count = chunk_count(len(items), jobs_per_chunk, workers)
    if count == 0:
        return []
    size, larger = divmod(len(items), count)
    chunks: list[list[T]] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < larger else 0)
        chunks.append(list(items[start:end]))
        start = end
    return chunks
