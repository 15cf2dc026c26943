"""The example bank's classifier (naive Bayes over words and word pairs, Dirichlet-smoothed) and how its
probabilities take part in settling an answer. Pure: counts are built here as the database keeps them."""

from collections import Counter, defaultdict

import pytest

from triage_pipeline.domain.confidence import Signal, decide_label, settle_answer
from triage_pipeline.domain.example import NeighbourVote
from triage_pipeline.domain.example_classifier import (
    TERM_MAX_LENGTH,
    BankCounts,
    BankEvidence,
    BankOpinion,
    LabelCounts,
    classifier_terms,
    label_probabilities,
    terms_text,
)
from triage_pipeline.domain.triage_answer import Priority, Sentiment, TriageAnswer

LABELLED = [
    ("Charged twice", "my card was charged twice for the annual plan", "billing"),
    ("Refund missing", "the refund for the double charge never reached my card", "billing"),
    ("Invoice wrong", "the invoice shows the wrong amount charged to my card", "billing"),
    ("Site down", "the storefront returns a gateway error and nobody can reach checkout", "outage"),
    ("Checkout down", "gateway error on every page, customers cannot reach the store", "outage"),
]


def counts_of(rows: list[tuple[str, str, str]]) -> BankCounts:
    """What the triggers of migration 0015 keep, for one field."""
    labels: Counter[str] = Counter()
    terms_total: Counter[str] = Counter()
    term_examples: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for title, description, label in rows:
        terms = classifier_terms(title, description)
        labels[label] += 1
        terms_total[label] += len(terms)
        for term in terms:
            term_examples[term][label] += 1
    return BankCounts(
        {label: LabelCounts(n, terms_total[label]) for label, n in labels.items()},
        {term: dict(per_label) for term, per_label in term_examples.items()},
    )


def test_terms_are_lower_case_words_and_adjacent_pairs_once_each_with_no_newline() -> None:
    terms = classifier_terms("Log in fails", "Log in\nfails again")
    assert terms == tuple(sorted({"log", "in", "fails", "again", "log in", "in fails", "fails log", "fails again"}))
    assert all("\n" not in term for term in terms)
    assert terms_text(terms).split("\n") == list(terms)


def test_runs_of_word_characters_too_long_to_be_words_are_no_terms() -> None:
    longest = "x" * TERM_MAX_LENGTH
    terms = classifier_terms("Token", "key " + "ab" * 1500 + " leaked " + longest)
    # the 3,000-character run is dropped as if it were not there
    assert terms == tuple(sorted({"token", "key", "leaked", longest, "token key", "key leaked", f"leaked {longest}"}))


def test_the_label_whose_examples_share_the_tickets_words_is_the_most_probable() -> None:
    probabilities = label_probabilities(
        classifier_terms("Double charge", "I was charged twice on my card"), counts_of(LABELLED), ("billing", "outage")
    )
    assert probabilities["billing"] > 0.7  # heavily smoothed on a bank this small
    assert sum(probabilities.values()) == pytest.approx(1.0)


def test_words_no_example_holds_leave_the_share_of_examples_as_the_answer() -> None:
    probabilities = label_probabilities(("zzz",), counts_of(LABELLED), ("billing", "outage"))
    assert probabilities == pytest.approx({"billing": 0.6, "outage": 0.4})


def test_labels_outside_the_vocabulary_and_labels_without_examples_get_no_probability() -> None:
    probabilities = label_probabilities(classifier_terms("gateway error", ""), counts_of(LABELLED), ("outage", "bug"))
    assert probabilities == {"outage": 1.0}
    assert label_probabilities(("gateway",), BankCounts(), ("outage",)) == {}


def test_without_an_example_its_own_words_no_longer_vote_for_its_label() -> None:
    ticket = ("Strange glitch", "the zebra widget flickers")
    counts = counts_of([*LABELLED, (*ticket, "outage")])
    terms = classifier_terms(*ticket)

    with_itself = label_probabilities(terms, counts, ("billing", "outage"))
    without_itself = label_probabilities(terms, counts.without("outage", terms), ("billing", "outage"))

    assert with_itself["outage"] > without_itself["outage"] + 0.2
    assert without_itself == pytest.approx(label_probabilities(terms, counts_of(LABELLED), ("billing", "outage")))


def test_an_owners_bank_merged_with_the_shared_one_adds_their_counts() -> None:
    halves = (LABELLED[0], LABELLED[3], LABELLED[4]), (LABELLED[1], LABELLED[2])  # "billing" in both
    merged = counts_of(list(halves[0])).merged(counts_of(list(halves[1])))
    assert merged == counts_of([*halves[0], *halves[1]])
    assert merged.labels["billing"].examples == 3


def test_the_opinion_covers_the_category_and_the_priority() -> None:
    priority = counts_of([(t, d, "urgent" if label == "outage" else "normal") for t, d, label in LABELLED])
    evidence = BankEvidence(counts_of(LABELLED), priority, classifier_terms("Site down", "gateway error"))
    opinion = BankOpinion.of(evidence, ("billing", "outage"))
    assert max(opinion.category, key=opinion.category.__getitem__) == "outage"
    assert max(opinion.priority, key=opinion.priority.__getitem__) == "urgent"


def test_the_bank_overrules_a_split_vote_and_is_listed_among_the_signals() -> None:
    vote = NeighbourVote.of([("billing", 0.6), ("outage", 0.5)])
    without = decide_label("billing", 0.5, vote, model_weight=0.0)
    with_bank = decide_label(
        "billing", 0.5, vote, model_weight=0.0, bank={"outage": 0.9, "billing": 0.1}, bank_weight=0.4
    )
    assert without.label == "billing"
    assert (with_bank.label, with_bank.overruled) == ("outage", True)
    assert with_bank.confidence == pytest.approx(0.6 * 5 / 11 + 0.4 * 0.9)
    assert with_bank.signals == (Signal.LOGPROBS, Signal.NEIGHBOURS, Signal.EXAMPLE_BANK)


def test_the_model_the_bank_and_the_vote_each_count_with_their_weight() -> None:
    vote = NeighbourVote.of([("billing", 0.5), ("outage", 0.5)])
    decision = decide_label(
        "outage", 0.9, vote, model_weight=0.05, bank={"billing": 0.8, "outage": 0.2}, bank_weight=0.4
    )
    assert decision.label == "billing"
    assert decision.confidence == pytest.approx(0.55 * 0.5 + 0.05 * 0.0 + 0.4 * 0.8)


def test_without_logprobs_the_vote_and_the_bank_decide_and_the_model_label_only_breaks_ties() -> None:
    vote = NeighbourVote.of([("billing", 0.6), ("outage", 0.4)])
    decision = decide_label(
        "outage", None, vote, model_weight=0.05, bank={"billing": 0.7, "outage": 0.3}, bank_weight=0.4
    )
    assert (decision.label, decision.overruled) == ("billing", True)
    assert decision.confidence == pytest.approx(0.6 * 0.6 + 0.4 * 0.7)
    assert decision.signals == (Signal.NEIGHBOURS, Signal.EXAMPLE_BANK)
    without_bank = decide_label("outage", None, vote, model_weight=0.05)
    assert without_bank.label == "outage"  # as before the bank: the model's label stands
    assert without_bank.confidence == pytest.approx(0.4)


def test_a_bank_that_knows_nothing_leaves_its_weight_to_the_vote() -> None:
    vote = NeighbourVote.of([("billing", 0.6), ("outage", 0.4)])
    decision = decide_label("billing", 0.5, vote, model_weight=0.0, bank={}, bank_weight=0.4)
    assert decision.confidence == pytest.approx(0.6)
    assert Signal.EXAMPLE_BANK not in decision.signals


def test_settled_answer_logs_the_banks_probabilities_of_both_fields() -> None:
    from tests.unit.test_confidence_and_review import example

    settled = settle_answer(
        TriageAnswer("bug", Priority.HIGH, Sentiment.NEUTRAL, "en", "summary", 1.0),
        category_probability=0.6,
        priority_probability=0.9,
        examples=[example("bug", 0.8)],
        category_bank={"bug": 0.123456, "outage": 0.876544},
        priority_bank={"high": 1.0},
        vocabulary=("bug", "outage"),
        review_threshold=0.5,
    )
    assert settled.log["bank_category"] == {"bug": 0.1235, "outage": 0.8765}
    assert settled.log["bank_priority"] == {"high": 1.0}
    assert "example_bank" in settled.log["signals"]
