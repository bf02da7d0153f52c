"""Families of sequences a skeptic would try, each judged at every prefix.

A test set drawn like the training data cannot tell "learned the rule" from "fits the data": uniform
random digits almost never hold a long run of one digit. These fixed, seeded kinds of sequence do
(FAMILIES), and each is judged at every prefix, so one 2,000-digit run of 7s tests every run length
from 1 to 2,000.
"""

import dataclasses
import random

import torch


@torch.inference_mode()
def answers_at_every_prefix(model, digits):
    """(batch, time): the model's answer after each prefix of equal-length sequences (one pass over them)."""
    return model.prefix_logits(digits).argmax(dim=-1)


def first_wrong_prefix(digits, wrong):
    """The shortest prefix marked wrong among the rows of digits (batch, time), or None."""
    if not wrong.any():
        return None
    lengths = torch.where(wrong, torch.arange(1, digits.shape[1] + 1), digits.shape[1] + 1).amin(dim=1)
    row = int(lengths.argmin())
    return digits[row, : int(lengths[row])].tolist()


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    what: str
    make: object  # (rng: random.Random, digits: int) -> list of equal-length groups of sequences


def runs_after_heads(rng, base, head_lengths, tail):
    """A few random digits (the head) followed by a run of one digit: every head length, every run digit."""
    groups = []
    for head_length in head_lengths:
        groups.append([[rng.randrange(base) for _ in range(head_length)] + [d] * tail
                       for d in range(base) for _ in range(4)])
    return groups


FAMILIES = [
    Family("random, 1,000 and 5,000 digits", "uniform random digits, as in training but far longer",
           lambda rng, b: [[[rng.randrange(b) for _ in range(1000)] for _ in range(64)],
                           [[rng.randrange(b) for _ in range(5000)] for _ in range(8)]]),
    Family("one digit repeated", "d d d ... (every digit, 2,000 times): every run length 1-2,000",
           lambda rng, b: [[[d] * 2000 for d in range(b)]]),
    Family("a digit, then zeros", "d 0 0 0 ... (every digit, then 2,000 zeros)",
           lambda rng, b: [[[d] + [0] * 2000 for d in range(b)]]),
    Family("random head, then a run", "1-5 random digits, then one digit repeated 1,000 times",
           lambda rng, b: runs_after_heads(rng, b, range(1, 6), 1000)),
    Family("sparse", "zeros with a random non-zero digit at 2% of the positions, 2,000 digits",
           lambda rng, b: [[[rng.randrange(1, b) if rng.random() < 0.02 else 0 for _ in range(2000)]
                            for _ in range(64)]]),
    Family("skewed digits", "each sequence draws its digits from its own lopsided distribution "
           "(Dirichlet 0.1), 1,000 digits", lambda rng, b: [[skewed(rng, b, 1000) for _ in range(64)]]),
    Family("periodic", "a random motif of 2-4 digits repeated, 1,000 digits",
           lambda rng, b: [[periodic(rng, b, 1000) for _ in range(64)]]),
    Family("runs of runs", "runs of random digits with random lengths (mean 50), 2,000 digits",
           lambda rng, b: [[runs_of_runs(rng, b, 2000) for _ in range(64)]]),
]
FAMILY_SEED = 20_261_123  # fixed: the same sequences for every model and every run of the audit


def skewed(rng, base, length):
    weights = [rng.gammavariate(0.1, 1.0) + 1e-12 for _ in range(base)]
    return rng.choices(range(base), weights=weights, k=length)


def periodic(rng, base, length):
    motif = [rng.randrange(base) for _ in range(rng.randint(2, 4))]
    return (motif * length)[:length]


def runs_of_runs(rng, base, length):
    sequence = []
    while len(sequence) < length:
        sequence += [rng.randrange(base)] * (1 + int(rng.expovariate(1 / 49)))
    return sequence[:length]


def family_sequences(family, base):
    """The family's fixed sequences, as (batch, time) tensors of equal lengths."""
    rng = random.Random(f"{FAMILY_SEED}:{family.name}:{base}")
    return [torch.tensor(group) for group in family.make(rng, base)]


def judge_families(model, base, families=FAMILIES):
    """Per family: prefixes judged, how many wrong, and the shortest wrong prefix found."""
    results = []
    for family in families:
        judged = wrong = 0
        shortest = None
        for digits in family_sequences(family, base):
            misses = answers_at_every_prefix(model, digits) != digits.cumsum(dim=1) % base
            judged, wrong = judged + misses.numel(), wrong + int(misses.sum())
            found = first_wrong_prefix(digits, misses)
            if found is not None and (shortest is None or len(found) < len(shortest)):
                shortest = found
        results.append({"family": family.name, "what": family.what, "prefixes": judged, "wrong": wrong,
                        "accuracy": 1 - wrong / judged, "shortest_wrong": shortest})
    return results
