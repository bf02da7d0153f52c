"""How the network's dynamics bear on the proofs, measured at the states it visits (one layer of the plain
tanh cell; None for other cells).

  stretch       how much one digit's step stretches distances and boxes, and after how many digits
                products of steps contract
  slowest_loop  the periodic input on which the network forgets slowest: near 1 a digit, the keyed
                boxes have no room to close
"""

import itertools
import math

import torch

from rnn_tutorial.audit.domains import balls_apply, tanh_cell_parts


@torch.inference_mode()
def stretch(model, base, states, count=64, depth=8, seed=0):
    """Whether one-step regions can close, measured: for one layer of the plain tanh cell, at visited states,
    how much one digit's step stretches distances (the Jacobian's spectral norm) and boxes (its largest
    absolute row sum), and after how many digits every sampled product of steps contracts (norm < 1).
    A ball proof needs the first below 1, a box proof the second, near the states that share a region
    (--stretch_penalty trains the second down). None for other cells."""
    if not balls_apply(model):
        return None
    w, u, _ = tanh_cell_parts(model, base)
    generator = torch.Generator().manual_seed(seed)
    h = states.double()[torch.randint(0, len(states), (count,), generator=generator)]
    product, contracts_from = torch.eye(w.shape[0], dtype=torch.float64).expand(count, -1, -1), None
    for k in range(1, depth + 1):
        h = torch.tanh(h @ w.T + u[torch.randint(0, base, (count,), generator=generator)])
        jacobian = (1 - h**2)[:, :, None] * w
        product = jacobian @ product
        if k == 1:
            norms, rows = torch.linalg.matrix_norm(jacobian, ord=2), jacobian.abs().sum(dim=2).amax(dim=1)
        if contracts_from is None and float(torch.linalg.matrix_norm(product, ord=2).max()) < 1:
            contracts_from = k
    return {"step_median": float(norms.median()), "step_max": float(norms.max()), "box_max": float(rows.max()),
            "contracts_from": contracts_from, "paths": count, "depth": depth}


def necklaces(base, longest):
    """Every periodic input of up to `longest` digits once: the words that are not a repetition of a shorter
    one, each as the least of its rotations (0; 0 1; 0 0 1; ...)."""
    for n in range(1, longest + 1):
        for word in itertools.product(range(base), repeat=n):
            if all(word[i:] + word[:i] > word for i in range(1, n)):
                yield word


@torch.inference_mode()
def slowest_loop(model, base, longest=3, settle=60, seed=0):
    """The periodic input on which the network forgets slowest, measured: for one layer of the plain tanh cell,
    every word of up to `longest` digits read again and again settles into a loop of states (per coset of the
    sums it visits, from the state after one digit and after five random ones); around it, a small box shrinks
    each lap by the spectral radius of the product of the steps' absolute Jacobians. Its root per digit is how
    much the boxes of a proof must shrink a step there; near 1 they barely do, and a network that needs many
    steps to forget on some input leaves the keyed boxes no room (docs/audit.md). And, on that loop, how fast
    the network itself forgets (network_per_digit: the spectral radius of the product of the Jacobians
    themselves): below the boxes' factor, what a box loses is the units' mixing, which a box cannot follow
    (its corners take every sign at once). None for other cells."""
    if not balls_apply(model):
        return None
    w, u, _ = tanh_cell_parts(model, base)
    step = lambda h, d: torch.tanh(h @ w.T + u[d])  # noqa: E731
    head = torch.randint(0, base, (base, 5), generator=torch.Generator().manual_seed(seed))
    head[:, -1] = (torch.arange(base) - head[:, :-1].sum(dim=1)) % base  # head s sums to s
    after_head = torch.zeros(base, w.shape[0], dtype=torch.float64)
    for t in range(head.shape[1]):
        after_head = step(after_head, head[:, t])
    worst = None
    for word in necklaces(base, longest):
        cosets = math.gcd(sum(word), base)
        lap = list(word) * (base // cosets)  # until the sum comes back
        h = torch.cat([torch.tanh(u[:cosets]), after_head[:cosets]])
        for _ in range(-(-settle // len(lap))):
            for d in lap:
                h = step(h, d)
        h = h[torch.cat([torch.ones(cosets, dtype=torch.bool),  # both starts of a coset in one loop: once
                         (h[cosets:] - h[:cosets]).abs().amax(dim=1) > 1e-9])]
        product = lap_product(step, w.abs(), h, lap)  # a box's growth per lap, at each state of the loop
        if worst is not None and float(product.sum(dim=2).max()) ** (1 / len(lap)) <= worst["per_digit"]:
            continue  # its largest row sum bounds the spectral radius: not the slowest
        per_digit = float(torch.linalg.eigvals(product).abs().max()) ** (1 / len(lap))
        if worst is None or per_digit > worst["per_digit"]:
            worst = {"word": list(word), "per_digit": per_digit, "lap": len(lap),
                     "network_per_digit": float(torch.linalg.eigvals(lap_product(step, w, h, lap)).abs().max())
                     ** (1 / len(lap))}
    return worst


def lap_product(step, weight, h, lap):
    """Per state of h, the product along the digits of lap of the cell's Jacobians (1 - h'^2) weight, with weight
    the recurrent matrix (how the network itself moves a small difference) or its absolute values (how a box grows)."""
    product = torch.eye(weight.shape[0], dtype=torch.float64).expand(len(h), -1, -1)
    for d in lap:
        h = step(h, d)
        product = ((1 - h**2)[:, :, None] * weight) @ product
    return product
