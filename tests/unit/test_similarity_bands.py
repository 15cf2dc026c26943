"""MinHash bands: the same words give the same bands in any process; texts about the same thing share bands,
unrelated ones do not."""

import subprocess
import sys

from triage_pipeline.domain.example import search_text
from triage_pipeline.domain.similarity_bands import BANDS, similarity_bands

REFUND = search_text(
    "Refund never arrived after double charge",
    "I was charged twice for my annual plan on March 3 and support promised a refund within five days. "
    "It is now two weeks later and the refund has not arrived on my card statement.",
)
REFUND_AGAIN = search_text(
    "Refund still missing after being charged twice",
    "Support promised a refund within five days after I was charged twice for my annual plan. "
    "Two weeks later the refund has still not arrived on my card statement. Order 88123.",
)
PRINTER = search_text(
    "Receipt printer prints blank pages",
    "Our POS receipt printer started feeding blank paper after the latest app update on the tablet.",
)


def test_bands_are_signed_32_bit_values_one_per_band() -> None:
    bands = similarity_bands(REFUND)
    assert len(bands) == BANDS
    assert all(-(2**31) <= b < 2**31 for b in bands)


def test_the_same_words_give_the_same_bands_whatever_their_order_case_numbers_or_repetitions() -> None:
    reordered = " ".join(reversed(REFUND.split())) + " refund 12345"
    assert similarity_bands(reordered) == similarity_bands(REFUND)


def test_bands_are_the_same_in_another_python_process() -> None:
    code = f"from triage_pipeline.domain.similarity_bands import similarity_bands; print(similarity_bands({REFUND!r}))"
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == str(similarity_bands(REFUND))


def test_a_ticket_about_the_same_thing_shares_bands_and_an_unrelated_one_does_not() -> None:
    refund = set(similarity_bands(REFUND))
    assert refund & set(similarity_bands(REFUND_AGAIN))
    assert not refund & set(similarity_bands(PRINTER))


def test_a_text_without_words_has_no_bands() -> None:
    assert similarity_bands("") == []
    assert similarity_bands("12345 - 678 !") == []
