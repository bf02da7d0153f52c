"""The whole audit of one model: families, both searches, the automaton, the proof and the dynamics measures,
as one JSON-ready dict whose 'verdict' sums it up; and what a sweep record keeps of it (summary)."""

import time

import torch

from rnn_tutorial.audit.automaton import extract_automaton
from rnn_tutorial.audit.dynamics import slowest_loop, stretch
from rnn_tutorial.audit.families import judge_families
from rnn_tutorial.audit.proof import KEYED_ROUNDS, prove
from rnn_tutorial.audit.report import verdict
from rnn_tutorial.audit.searches import answer, gradient_search, search, shorten
from rnn_tutorial.beam import SEARCHED

# Bumped when the audit judges differently (1: boxes only; 2: balls too; 3: the gradient search too, and both
# searches stop after a count of sequences instead of 20 s each; 4: boxes keyed by the last digits too; 5: and a
# finer try of them last; 6: that try widens faster; 7: a keyed try that keeps a key's modes apart, last): a record
# judged by an older audit is judged again from its kept weights by `study.py exact --reaudit`, without training
# (records.py).
VERSION = 7
PROOF_ONLY_SINCE = 3  # what changed since this version is the proof alone: families and searches stay as judged
PROOF_KEPT_SINCE = 4  # and since this one, only tries after every earlier one failed: a proof found then stands
TRIES_KEPT_SINCE = 6  # and since this one, the earlier tries are the same: a failed proof needs only the tries added since
# (proof.KEYED_TRIES_ADDED)


def audit(model, config, beam_sequences=SEARCHED, max_length=1000, regions_per_state=(1, 4, 16),
          gradient_sequences=SEARCHED, keyed_rounds=KEYED_ROUNDS, deep=False, certificate=False):
    """Families, both searches, automaton and proof of one model; a JSON-ready dict whose 'verdict' sums it up.
    certificate: a proof by boxes also holds, under proof["kept"] (tensors, not JSON), what its certificate needs."""
    torch.set_num_threads(1)  # as train(): fastest for a model this small, and never oversubscribes a busy machine
    start = time.perf_counter()
    model = model.eval().float()
    base = config["max_number"] + 1
    families = judge_families(model, base)
    found, tried = search(model, base, max_length=max_length, max_sequences=beam_sequences)
    gradient_found, gradient_tried = gradient_search(model, base, max_sequences=gradient_sequences)
    gradient = {"found": gradient_found, "searched": gradient_tried}
    candidates = [found, gradient_found] + [f["shortest_wrong"] for f in families]
    candidates = [c for c in candidates if c is not None]
    counterexample = None
    if candidates:
        shortest = shorten(model, min(candidates, key=len), base)
        counterexample = {"sequence": shortest, "answer": answer(model, shortest), "truth": sum(shortest) % base}
    automaton, states, sums, _ = extract_automaton(model, base)
    proof = {"proven": False, "reason": "a counterexample exists"} if counterexample else prove(
        model, base, states, sums, regions_per_state, keyed_rounds=keyed_rounds, deep=deep, keep=certificate)
    result = {"families": families, "searched": tried, "beam_found": found, "gradient_search": gradient,
              "counterexample": counterexample, "automaton": automaton, "proof": proof,
              "stretch": stretch(model, base, states), "slowest_loop": slowest_loop(model, base),
              "seconds": round(time.perf_counter() - start, 2)}
    result["verdict"] = verdict(result)
    return result


def summary(result):
    """What a sweep record keeps of an audit: per family the count wrong, and everything else but the
    automaton's purity table."""
    return {**{k: v for k, v in result.items() if k != "automaton"}, "version": VERSION,
            "automaton": {k: v for k, v in result["automaton"].items() if k != "purity"}}
