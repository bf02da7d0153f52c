"""A proof's certificate: everything the induction needs and nothing else, for the independent checker
(rnn_tutorial/check_proof.py, whose docstring states the claim and the rounding argument).

  certificate(model, base, proof)  the certificate of a proof by boxes that kept its regions
                                   (judge.audit(..., certificate=True)), its regions settled under the
                                   checker's rounding argument (settled); None where the checker reads no
                                   such proof (balls, other cells)
  write(cert, path)                saved with torch.save (plain tensors, ints and strings); its size in bytes

It holds a hash of the weights, the regions (boxes, float64) with the sum each must read out, for each region
and digit the region its image must land in, and the base cases: the key length k and, for each sequence of k
digits, the region its state must lie in. The audit regenerates it deterministically, so it need not be kept.
"""

import os

import torch

from rnn_tutorial.audit.fixpoint import widened
from rnn_tutorial.beam import each_digit_after
from rnn_tutorial.check_proof import FORMAT, Cell, weights_hash

HEADROOM = 1e-10  # how far inside its region every image is kept, so that a checker whose float64 products
# round a little differently (another BLAS, other chunks) still finds it inside
CHUNK = 8192  # regions stepped at once


def certificate(model, base, proof, rounds=100):
    """The certificate of a proof by boxes, its regions settled under the checker's own rounding argument; None
    where there is none to give (see the module's docstring) or where they do not settle within `rounds`."""
    kept = proof.get("kept")
    if not proof["proven"] or kept is None or model.rnn_type != "rnn" or model.rnn.num_layers != 1 \
            or model.rnn.nonlinearity != "tanh":
        return None
    state = {name: value.detach().cpu() for name, value in model.state_dict().items()}
    regions = settled(Cell(state), base, kept["k"], *kept["regions"], kept["next"], kept["entry"], rounds)
    if regions is None:
        return None
    return {"format": FORMAT, "cell": "rnn_tanh", "base": base, "k": kept["k"], "weights_sha256": weights_hash(state),
            "labels": kept["labels"].to(torch.int32), "lo": regions[0].contiguous(), "hi": regions[1].contiguous(),
            "next": kept["next"].to(torch.int32), "entry": kept["entry"].to(torch.int32)}


def settled(cell, base, k, lo, hi, nxt, entry, rounds):
    """The audit's regions grown, with the same targets, until they hold what the checker's interval step
    (check_proof.Cell, whose rounding argument is stricter than the audit's: any order of summation) says
    they must: the base cases' states and every region's images, each HEADROOM inside. None if they do not
    settle within `rounds` (they grow by a few units in the last place where the proof had room)."""
    lo, hi = lo.double().clone(), hi.double().clone()
    base_lo = base_hi = torch.zeros(1, cell.hidden, dtype=torch.float64)
    for _ in range(k):  # the states after every sequence of k digits, in the order of entry
        parent, digit = each_digit_after(len(base_lo), base)
        base_lo, base_hi = cell.step(base_lo[parent], base_hi[parent], digit)
    for _ in range(rounds):
        need_lo = lo.scatter_reduce(0, entry.long()[:, None].expand_as(base_lo), base_lo - HEADROOM, "amin")
        need_hi = hi.scatter_reduce(0, entry.long()[:, None].expand_as(base_hi), base_hi + HEADROOM, "amax")
        for start in range(0, len(lo), CHUNK):
            sources, read = each_digit_after(min(CHUNK, len(lo) - start), base)
            sources = sources + start
            image_lo, image_hi = cell.step(lo[sources], hi[sources], read)
            into = nxt.long()[sources, read][:, None].expand_as(image_lo)
            need_lo = need_lo.scatter_reduce(0, into, image_lo - HEADROOM, "amin")
            need_hi = need_hi.scatter_reduce(0, into, image_hi + HEADROOM, "amax")
        if (need_lo >= lo).all() and (need_hi <= hi).all():
            return lo, hi
        lo, hi = -widened(-lo, -need_lo), widened(hi, need_hi)
    return None


def write(cert, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    torch.save(cert, path)
    return os.path.getsize(path)
