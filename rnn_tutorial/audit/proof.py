"""The proof tries, coarse and quick first, each a domain and a partition on the one fixpoint engine.

  prove                  boxes by automaton state (1, 4, 16 a state); then, for one layer of the tanh cell,
                         balls likewise; then boxes keyed by the sum and the last 2 or 3 digits (KEYED_TRIES);
                         with deep, last the deep try (DEEP_TRY). The first proof found stands.
  prove_with_boxes       one try of each kind, as the tests and the record upkeep call them
  prove_with_balls
  prove_with_keyed_boxes
  prove_deep
"""

from rnn_tutorial.audit.domains import Balls, Boxes, balls_apply
from rnn_tutorial.audit.fixpoint import grow_to_fixpoint
from rnn_tutorial.audit.partitions import ByKey, ByState

KEYED_ROUNDS = 30  # rounds the keyed boxes may grow: a few seconds each at k = 3; a network whose boxes
# still grow slowly after these may close later (--keyed_rounds)
# the keyed boxes tried, coarse and quick first: (last digits in the key, boxes a key may have, how far an image
# must be from every box of its key to start another, how far a growing bound overshoots, the most boxes in all,
# None for no bound but the key's). The third holds states of one key that a network keeps apart by an older digit
# in separate boxes, and widens five times as fast, for boxes that creep (it proved reliable seeds 10 and 19; when
# it fails it adds 20-40 s on one core). The last, added in audit version 7, keeps states of one key a quarter of a
# unit apart in up to 16 boxes, for a network with two modes of one key after runs of 0 and 5, a unit at -1 in one
# and +1 in the other (docs/audit.md: it proved seed 5 of the re-run of `reliable` in 25 rounds, with 16,686 boxes).
# When it fails it adds a few minutes; it stops at 40,000 boxes, since a box's ten images take 20 KB.
KEYED_TRIES = ((2, 4, 1.0, 0.1, None), (3, 4, 1.0, 0.1, None), (3, 8, 0.5, 0.5, None), (3, 16, 0.25, 0.1, 40_000))
KEYED_TRIES_ADDED = {7: KEYED_TRIES[3:]}  # audit version -> the keyed tries it added (records.reaudit)
# the deep try, opt-in (--deep), after every other has failed: keys of the last four digits, up to 16 boxes a key,
# for a network that keeps three digits on its slowest loop (reliable seed 44 on `2 8 2 8 ...`, where the boxes of
# three digits grow); 10^5 keys, about a minute a round on one core, so up to an hour; at most 1.5 boxes a key on
# average (10 images a box, each 1 KB twice: 3 GB), where reliable seed 43's boxes multiplied past 20 GB
DEEP_TRY, DEEP_ROUNDS, DEEP_MOST_BOXES = (4, 16, 1.0, 0.1), 60, 150_000


def prove(model, base, states, sums, regions_per_state=(1, 4, 16), rounds=400, keyed_tries=KEYED_TRIES,
          keyed_rounds=KEYED_ROUNDS, deep=False, keep=False):
    """Try to prove the model right on every sequence; a dict saying whether, and if not, why not.
    Boxes first (they suit saturated units); then, for the plain tanh cell, balls (they suit a map that
    contracts near its states while mixing its units); then boxes keyed by the sum and the last digits
    (they suit a network that remembers its last few digits and forgets older ones); deep: and last the
    deep try. keep: a proof by boxes also holds what its certificate needs, under "kept" (certificate.py)."""
    boxes, states = Boxes(model), states.double()
    attempts = []
    for k in regions_per_state:
        attempts.append(prove_with_boxes(boxes, base, states, sums, k, rounds, keep))
        if attempts[-1]["proven"]:
            break
    if not attempts[-1]["proven"] and balls_apply(model):
        for k in regions_per_state:
            attempts.append(prove_with_balls(model, base, states, sums, k, rounds=100))
            if attempts[-1]["proven"]:
                break
    if not attempts[-1]["proven"]:
        for k, modes, apart, widening, most_boxes in keyed_tries:
            attempts.append(prove_with_keyed_boxes(boxes, base, k, modes, apart, widening, keyed_rounds, keep,
                                                   most_boxes))
            if attempts[-1]["proven"]:
                break
    if deep and not attempts[-1]["proven"]:
        attempts.append(prove_deep(boxes, base, keep))
    best = dict(attempts[-1])
    if not best["proven"]:  # why the largest try of each kind of region failed
        last_of_each = {a["method"]: a for a in attempts}.values()
        best["reason"] = "; ".join(f"{region_count(a)}: {a['reason']}" for a in last_of_each)
    best["attempts"] = [attempt_summary(a) for a in attempts]
    return best


def prove_with_boxes(boxes, base, states, sums, k, rounds, keep=False):
    """Boxes around the visited states (k per automaton state), grown until every digit maps each box into a
    box of the right state. boxes: a Boxes domain (or the model)."""
    boxes = boxes if isinstance(boxes, Boxes) else Boxes(boxes)
    return grow_to_fixpoint(boxes, ByState(states, sums, base, k, keep), rounds)


def prove_with_balls(model, base, states, sums, k=1, rounds=100):
    """Euclidean balls around the visited states (k per automaton state), for one layer of the plain tanh cell.
    Boxes fail where the cell mixes its units (their corners grow every step); a ball only asks that the map
    contracts near the states the network uses."""
    if not balls_apply(model):
        return {"method": "balls", "balls": 0, "proven": False,
                "reason": "balls are written for one layer of the tanh cell"}
    return grow_to_fixpoint(Balls(model, base), ByState(states, sums, base, k), rounds)


def prove_with_keyed_boxes(boxes, base, k, modes=4, apart=1.0, widening=0.1, rounds=KEYED_ROUNDS, keep_boxes=False,
                           most_boxes=None):
    """Boxes keyed by what the sequence says, not by where its states lie (partitions.ByKey). At a fixpoint,
    with the read-out right everywhere in every box and on every sequence of up to k digits, every sequence of
    every length is answered right (by induction on its length from k). widening: how far a bound that must
    grow overshoots (fixpoint.widened)."""
    boxes = boxes if isinstance(boxes, Boxes) else Boxes(boxes)
    return grow_to_fixpoint(boxes, ByKey(base, k, modes, apart, most_boxes, keep_boxes), rounds, widening)


def prove_deep(boxes, base, keep=False):
    """The deep try (DEEP_TRY), bounded in rounds and boxes."""
    return prove_with_keyed_boxes(boxes, base, *DEEP_TRY, DEEP_ROUNDS, keep, most_boxes=DEEP_MOST_BOXES)


def attempt_summary(attempt):
    return {"regions": region_count(attempt), "proven": attempt["proven"], "reason": attempt["reason"]}


def region_count(attempt):
    if attempt.get("method") == "keyed boxes":
        finer = f" (up to {attempt['modes']} a key)" if attempt.get("modes", 4) != 4 else ""
        return f"{attempt['boxes']:,} boxes keyed by the sum and the last {attempt['digits']} digits{finer}"
    return f"{attempt['balls']} balls" if attempt.get("method") == "balls" else f"{attempt['boxes']} boxes"
