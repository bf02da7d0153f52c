"""Upkeep of the study's audited records (records/audit/...): judged again from the final weights kept beside
each, without training, when the audit has changed (reaudit), by the deep try (deepened), or by the independent
checker (certified)."""

import time

import torch

import train_cls_rnn
from rnn_tutorial.audit.automaton import extract_automaton
from rnn_tutorial.audit.dynamics import slowest_loop
from rnn_tutorial.audit.intervals import IntervalCell
from rnn_tutorial.audit.judge import PROOF_KEPT_SINCE, PROOF_ONLY_SINCE, TRIES_KEPT_SINCE, VERSION, audit, summary
from rnn_tutorial import check_proof
from rnn_tutorial.audit import certificate
from rnn_tutorial.audit.proof import (DEEP_MOST_BOXES, DEEP_ROUNDS, DEEP_TRY, KEYED_ROUNDS, KEYED_TRIES,
                                      KEYED_TRIES_ADDED, attempt_summary, prove, prove_deep, prove_with_keyed_boxes,
                                      region_count)
from rnn_tutorial.audit.report import verdict


def recorded_model(record, weights_path):
    """The model of a sweep record, with the final weights kept beside it."""
    model = train_cls_rnn.build_model(record["flags"])
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return model


def reaudit(record, weights_path):
    """A sweep record judged again by this audit, from the final weights kept beside it."""
    model = recorded_model(record, weights_path)
    judged = record["audit"]
    if judged.get("version", 1) < PROOF_ONLY_SINCE:
        return {**record, "audit": summary(audit(model, record["flags"]))}
    torch.set_num_threads(1)
    model, base = model.eval().float(), record["flags"]["max_number"] + 1
    # the families and both searches are deterministic and unchanged since: only the proof is tried again
    if judged["counterexample"] is None and judged["version"] < VERSION and not (
            judged["proof"]["proven"] and judged["version"] >= PROOF_KEPT_SINCE):
        if judged["version"] >= TRIES_KEPT_SINCE:  # the earlier tries failed as they would now: only the new ones
            added = [t for version, tries in KEYED_TRIES_ADDED.items() if version > judged["version"] for t in tries]
            proof = judged["proof"]
            for k, modes, apart, widening, most_boxes in added:
                if not proof["proven"]:
                    proof = with_try(proof, prove_with_keyed_boxes(IntervalCell(model), base, k, modes, apart, widening,
                                                                   most_boxes=most_boxes))
        else:
            _, states, sums, _ = extract_automaton(model, base)
            proof = prove(model, base, states, sums)
        judged = {**{k: v for k, v in judged.items() if k != "certificate"}, "proof": proof}
        judged["verdict"] = verdict(judged)
    if unmeasured(judged):  # a measure added after version 6, without judging differently
        judged = {**judged, "slowest_loop": slowest_loop(model, base)}
    return {**record, "audit": {**judged, "version": VERSION}}


def deepened(record, weights_path):
    """A record with no counterexample and no proof, judged again by the deep try alone (every other try is
    recorded as failed); the proof then says it was tried ("deep"), proven or not."""
    torch.set_num_threads(1)
    base, proof = record["flags"]["max_number"] + 1, record["audit"]["proof"]
    attempt = prove_deep(IntervalCell(recorded_model(record, weights_path).eval().float()), base)
    judged = {**record["audit"], "proof": {**with_try(proof, attempt), "deep": True}}
    return {**record, "audit": {**judged, "verdict": verdict(judged)}}


def with_try(proof, attempt):
    """A failed proof after one more try: the try's proof if it found one, else the failure with its reason added;
    either way with the try among the attempts."""
    attempts = proof.get("attempts", []) + [attempt_summary(attempt)]
    return {**attempt, "attempts": attempts} if attempt["proven"] else {
        **proof, "attempts": attempts, "reason": f"{proof['reason']}; {region_count(attempt)}: {attempt['reason']}"}


def deep_pending(record):
    """Whether deepened() has anything to add: no counterexample, not proven, the deep try not yet made."""
    judged = record["audit"]
    return judged["counterexample"] is None and not judged["proof"]["proven"] and not judged["proof"].get("deep")


def stale(record):
    """Whether reaudit() has anything to add to a record: judged by an older audit, or without a measure."""
    return record["audit"].get("version", 1) < VERSION or unmeasured(record["audit"])


def unmeasured(judged):
    """Whether an audit lacks the slowest loop, or (measured before it was added) how fast the network itself
    forgets on it."""
    return "slowest_loop" not in judged or judged["slowest_loop"] is not None and \
        "network_per_digit" not in judged["slowest_loop"]


def checked(model, base, proof):
    """What a record keeps of a proof's certificate and its check: checked (the checker's yes or no), its message,
    the regions and the seconds taken (settling the regions and checking them)."""
    start = time.perf_counter()
    cert = certificate.certificate(model, base, proof)
    if cert is None:
        return {"checked": False, "message": "no certificate: the regions did not settle under the checker's "
                "argument, or the proof is not by boxes of one tanh layer", "seconds": round(time.perf_counter() - start, 2)}
    valid, message = check_proof.check(cert, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    return {"checked": valid, "message": message, "regions": len(cert["lo"]),
            "seconds": round(time.perf_counter() - start, 2)}


def certified(record, weights_path):
    """A proven record with its certificate written and checked (audit.certificate): the proof's winning try run
    again keeping its regions (deterministic: the same proof), then certificate.certificate and the checker."""
    torch.set_num_threads(1)
    model = recorded_model(record, weights_path).eval().float()
    base, proof = record["flags"]["max_number"] + 1, record["audit"]["proof"]
    tries = {(k, modes): (k, modes, apart, widening, KEYED_ROUNDS, most)
             for k, modes, apart, widening, most in KEYED_TRIES}
    tries[DEEP_TRY[:2]] = (*DEEP_TRY, DEEP_ROUNDS, DEEP_MOST_BOXES)
    if proof.get("method") == "keyed boxes" and (proof["digits"], proof.get("modes", 4)) in tries:
        k, modes, apart, widening, rounds, most = tries[proof["digits"], proof.get("modes", 4)]
        again = prove_with_keyed_boxes(IntervalCell(model), base, k, modes, apart, widening, rounds, keep_boxes=True,
                                       most_boxes=most)
    else:  # boxes or balls by automaton state: every try again, in order
        _, states, sums, _ = extract_automaton(model, base)
        again = prove(model, base, states, sums, keep=True)
    return {**record, "audit": {**record["audit"], "certificate": checked(model, base, again)}}


def certify_pending(record):
    """Whether certified() has anything to add: a proof without a certificate check."""
    return record["audit"]["proof"]["proven"] and "certificate" not in record["audit"]
