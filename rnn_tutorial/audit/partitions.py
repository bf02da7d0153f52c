"""Which region each image must land in: the partitions of the proofs' regions of hidden states.

  ByState  the automaton's states: the visited states of each right answer (the running sum) split
           into k groups, a region around each; every image is sent, once and for all in the first
           round, to the nearest region of its new sum. The initial (zero) state's images join too.
  ByKey    what the sequence says: up to `modes` regions for each (sum so far, last k digits), the
           base^(k+1) keys; the regions start from every sequence of k digits (the base cases), and
           an image goes to the nearest region of its new key, or starts one when it is far from all.

Each answers what fixpoint.py asks: result() (what to record), start(domain), labels() (the sum each
region must read out), assign(...) (where this round's images go) and keep(...).
"""

import math

import torch

from rnn_tutorial.beam import each_digit_after


def clusters_of(states, k):
    """k groups of states by a few rounds of k-means, started from k mutually far states (deterministic)."""
    chosen = [0]
    distance = torch.cdist(states, states[:1])[:, 0]
    while len(chosen) < k and distance.max() > 0:
        chosen.append(int(distance.argmax()))
        distance = torch.minimum(distance, torch.cdist(states, states[chosen[-1]:chosen[-1] + 1])[:, 0])
    k, centres = len(chosen), states[chosen]
    for _ in range(10):
        groups = torch.cdist(states, centres).argmin(dim=1)
        centres = torch.stack([states[groups == j].mean(dim=0) if (groups == j).any() else centres[j]
                               for j in range(k)])
    return torch.cdist(states, centres).argmin(dim=1)


def groups_by_state(states, sums, base, k):
    """The visited states of each automaton state split into up to k groups: (the state of each group,
    [the members of each group])."""
    labels, members = [], []
    for s in range(base):
        mine = states[sums == s]
        groups = clusters_of(mine, k)
        for g in groups.unique():
            labels.append(s), members.append(mine[groups == g])
    return torch.tensor(labels), members


def nearest_of_state(points, centres, labels, wanted):
    """For each point, the nearest centre among those whose label is the point's wanted one."""
    distance = torch.cdist(points, centres)
    distance[labels[None, :] != wanted[:, None]] = math.inf
    return distance.argmin(dim=1)


class ByState:
    """k regions per automaton state, around the visited states (float64) whose true sums are `sums`. One instance
    serves one try: it remembers, from the first round on, where each image goes."""

    sizes_in_reasons = True

    def __init__(self, states, sums, base, k, keep=False):
        self.base, self.keep_regions = base, keep
        self.state_of, self.members = groups_by_state(states, sums, base, k)
        self.into = None

    def result(self, domain):
        return {"method": domain.noun, domain.noun: len(self.state_of)}

    def labels(self):
        return self.state_of

    def start(self, domain):
        """A region around each group; the initial state's images are sent to the nearest region of their sum
        (a domain that starts_with_entry grows its regions to hold them at once)."""
        regions, self.entry = domain.start(self.members), domain.entry(self.base)
        self.entry_into = nearest_of_state(domain.centres(self.entry), domain.centres(regions), self.state_of,
                                           torch.arange(self.base))
        return domain.join(regions, self.entry_into, self.entry) if domain.starts_with_entry else regions

    def assign(self, domain, regions, images, round_):
        """Every image to the region of its new sum chosen in the first round (the nearest then), and the initial
        state's images too."""
        if self.into is None:
            sources, digits = each_digit_after(len(self.state_of), self.base)
            self.into = torch.cat([nearest_of_state(domain.centres(images), domain.centres(regions), self.state_of,
                                                    (self.state_of[sources] + digits) % self.base), self.entry_into])
        return regions, domain.cat(images, self.entry), self.into, True

    def keep(self, result, regions, into):
        """With keep: what a certificate needs (certificate.py): the regions, their labels, where each image
        went, and where the initial state's images went (the base cases, of one digit)."""
        if self.keep_regions:
            count = len(self.state_of)
            result["kept"] = {"labels": self.state_of, "regions": regions, "next": into[: count * self.base].view(
                count, self.base), "entry": into[count * self.base:], "k": 1}


DISTANCES_AT_ONCE = 1 << 16  # point-box differences held at once (128 units: 64 MB)


def nearest_box_of_key(points, wanted, centres, key, modes, apart):
    """For each point, the nearest region (by centre) among those of its wanted key, or -1 where it is farther
    than `apart` from all of them and the key has fewer than `modes` regions; then (the regions, the points that
    start a new region: one per such key, numbered after the existing regions)."""
    order = key.argsort(stable=True)
    count = torch.bincount(key, minlength=int(max(key.max(), wanted.max())) + 1)
    rank = torch.arange(len(key)) - (count.cumsum(0) - count)[key[order]]
    table = torch.full((len(count), modes), -1, dtype=torch.long)  # key -> its regions
    table[key[order], rank] = order
    candidates = table[wanted]
    distance = torch.full(candidates.shape, math.inf, dtype=torch.float64)
    point, slot = (candidates >= 0).nonzero(as_tuple=True)
    for start in range(0, len(point), DISTANCES_AT_ONCE):  # a point's differences to every box of its key: in chunks,
        p, s = point[start : start + DISTANCES_AT_ONCE], slot[start : start + DISTANCES_AT_ONCE]  # or 16 boxes a key
        distance[p, s] = (points[p] - centres[candidates[p, s]]).norm(dim=1)  # of 100,000 boxes take 16 GB at once
    nearest = distance.min(dim=1)
    into = candidates.gather(1, nearest.indices[:, None])[:, 0]
    lonely = (nearest.values > apart) & ((candidates >= 0).sum(dim=1) < modes)
    into[lonely] = -1
    lonely_keys, first = torch.unique(wanted[lonely], return_inverse=True)
    index = lonely.nonzero()[:, 0]
    new = index[torch.full((len(lonely_keys),), len(index)).scatter_reduce(0, first, torch.arange(len(index)), "amin")]
    into[new] = len(key) + torch.arange(len(new))
    return into, new


class ByKey:
    """Up to `modes` regions for each (sum so far, last k digits): base^(k+1) keys (boxes only).

    A trained network keeps its last few digits in its state, so the states of one sum spread over much
    of the cube (regions per sum fail), while the states that share a sum and their last k digits lie close
    together once the network forgets older digits. Every sequence of k digits is run through the cell
    (a box of width 0, widened for rounding) and starts the region of its key: the base cases, where the
    read-out must be right on every sequence of up to k digits. Then every region read with a digit d lands
    in a region of its new key, (s + d, the last k - 1 digits and d): the nearest one; an image farther than
    `apart` from every region of its key starts another (a network may keep a little of older digits, in a
    few keys, in saturated units). most_regions: give up beyond that many (memory); keep: a proof's result
    also holds the regions, as (key, lo, hi), to check them against real states.
    """

    sizes_in_reasons = False  # thousands of regions: a failure names the state, not a region's size

    def __init__(self, base, k, modes=4, apart=1.0, most_regions=None, keep=False):
        self.base, self.k, self.modes, self.apart, self.most_regions = base, k, modes, apart, most_regions
        self.keys, self.key, self.keep_regions = base**k, None, keep

    def result(self, domain):
        count = self.base * self.keys if self.key is None else len(self.key)
        return {"method": "keyed boxes", "boxes": count, "digits": self.k, "modes": self.modes}

    def labels(self):
        return self.key // self.keys

    def start(self, domain):
        cell = domain.cell
        lo = hi = torch.zeros(1, cell.size, dtype=torch.float64)  # the initial state
        last = total = torch.zeros(1, dtype=torch.long)  # per sequence: its last digits as a number, its sum
        for length in range(1, self.k + 1):
            parent, digit = each_digit_after(len(last), self.base)
            lo, hi = cell.step(lo[parent], hi[parent], digit)
            last, total = last[parent] * self.base + digit, (total[parent] + digit) % self.base
            if (cell.readout_margin(lo, hi, total) <= 0).any():
                return f"the read-out is not sure of every sequence of {length} digits"
        self.key = total * self.keys + last  # per region: sum * keys + last digits
        return lo, hi

    def assign(self, domain, regions, images, round_):
        """Every image to the nearest region of its new key; a far one starts a region (one per key a round;
        the key's other far images join it next round, so the round cannot be the last)."""
        keys, key = self.keys, self.key
        source, digit = each_digit_after(len(key), self.base)
        target = (key[source] // keys + digit) % self.base * keys + (key[source] % keys * self.base + digit) % keys
        into, new = nearest_box_of_key(domain.centres(images), target, domain.centres(regions), key, self.modes,
                                       self.apart)
        if len(new):
            if self.most_regions and len(key) + len(new) > self.most_regions:
                return f"more than {self.most_regions:,} boxes in round {round_} (images far apart in many keys)"
            self.key = torch.cat([key, target[new]])
            regions = domain.append(regions, images, new)
        return regions, images, into, bool((into >= 0).all()) and not len(new)

    def keep(self, result, regions, into):
        """With keep: the regions by key as (key, lo, hi), to check against real states, and what a certificate
        needs (certificate.py): the regions, their labels, where each image went, and the base cases (region j
        started from the j-th sequence of k digits, beam.each_digit_after's order)."""
        if self.keep_regions:
            result["kept"] = {"keys": self.key, "labels": self.labels(), "regions": regions,
                              "next": into.view(len(self.key), self.base), "entry": torch.arange(self.base**self.k),
                              "k": self.k}
