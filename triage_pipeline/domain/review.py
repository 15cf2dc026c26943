"""Whether a triage answer is applied as it is or waits for a person.

The ticket's own states stay the seed's (PENDING -> ON_TRIAGE -> COMPLETED | FAILED); the review status
is set beside them when an answer is stored: below its prompt version's `review_threshold` a COMPLETED
ticket `NEEDS_REVIEW`, at or above it the answer is `AUTO_APPLIED`; a correction or an accept by a person
makes it `REVIEWED`.
"""

from enum import StrEnum


class ReviewStatus(StrEnum):
    NEEDS_REVIEW = "NEEDS_REVIEW"
    AUTO_APPLIED = "AUTO_APPLIED"
    REVIEWED = "REVIEWED"


def review_status_for(confidence: float, threshold: float) -> ReviewStatus:
    """A threshold of 0 applies every answer; 1 sends every answer short of certainty to review."""
    return ReviewStatus.AUTO_APPLIED if confidence >= threshold else ReviewStatus.NEEDS_REVIEW
