"""The one fixpoint engine every proof try runs on: regions of hidden states grown until every digit maps
each region into a region, with the read-out right everywhere in every region.

A try is a domain (domains.py: what a region is, how the cell moves it, how regions are joined and
widened) and a partition (partitions.py: which region each image must land in). If, from the states
the partition starts from, every image lands inside its region and the read-out's margin is positive
on every region, the regions are an invariant of every reachable state, and the model is right on
every sequence of every length (by induction on the length).
"""

import torch


def widened(bound, need, by=0.1):
    """Widening, for every proof's fixpoint: an upper bound that must grow to `need` overshoots the growth by
    10% (or `by`), so that a contracting map reaches its fixpoint in few rounds (a lower bound:
    widened(-lo, -need))."""
    return torch.where(need > bound, need + by * (need - bound) + 1e-12, bound)


def grow_to_fixpoint(domain, partition, rounds, widening=0.1):
    """Grow the partition's regions, round after round, until they hold every image (proven) or until the read-out
    is unsure somewhere, the partition gives up, or `rounds` pass. A dict: proven, rounds, reason, and for a
    proof min_margin and widest (the widest side of a region); partition.result() adds the method and how many
    regions."""
    result = {**partition.result(domain), "proven": False, "rounds": 0}
    regions = partition.start(domain)
    if isinstance(regions, str):  # the partition's own base cases failed
        return {**result, "reason": regions}
    for round_ in range(1, rounds + 1):
        result.update(partition.result(domain), rounds=round_)
        margin = domain.margin(regions, partition.labels())
        if (margin <= 0).any():
            worst = int(margin.argmin())
            size = domain.size_note(regions, worst) if partition.sizes_in_reasons else ""
            result["reason"] = (f"the read-out is not sure of state {int(partition.labels()[worst])} everywhere in "
                                f"one of its {domain.noun}{size} in round {round_}")
            return result
        images = domain.step(regions, partition.base)
        assigned = partition.assign(domain, regions, images, round_)
        if isinstance(assigned, str):  # the partition gives up (too many regions)
            return {**result, "reason": assigned}
        regions, images, into, settled = assigned
        needed = domain.join(regions, into, images)
        if settled and domain.holds(regions, needed):
            result.update(proven=True, reason=f"fixpoint after {round_} rounds; smallest read-out margin "
                                              f"{float(margin.min()):.3g}{domain.proof_note(regions)}",
                          min_margin=float(margin.min()), widest=domain.widest(regions))
            partition.keep(result, regions, into)
            return result
        regions = domain.widen(regions, needed, widening)
    result["reason"] = f"no fixpoint within {rounds} rounds (the {domain.noun} kept growing)"
    return result
