"""Interval arithmetic through the model, in float64 with float32's rounding bounded outward.

One rule per operation on boxes (a box is a pair lo, hi of tensors, one row per box): affine maps,
monotone activations, sums, products, and the GRU's blend of two states. Each cell type's layer
(LAYERS: plain tanh or relu, GRU, LSTM) is those rules composed as the cell computes; IntervalCell
stacks the layers of a model, carries many boxes at once, and bounds the read-out.

Every bound is widened by what float32 rounding could add (gamma(n) per dot product, a few units in
the last place per activation and product), so that a box holding the real-arithmetic states also
holds what the float32 model computes, as long as its kernels round as IEEE float32 arithmetic does.
"""

import math

import torch

UNIT = 2.0**-24  # float32's unit roundoff


def gamma(n):
    """The classic bound on the relative rounding error of an n-term float32 dot product."""
    return n * UNIT / (1 - n * UNIT)


# ---------------------------------------------------------------- one rule per operation


def affine(weight, bias, box):
    """x -> x @ weight.T + bias on a box: exact per coordinate, then widened for float32 rounding."""
    lo, hi = box
    centre, radius = (lo + hi) / 2, (hi - lo) / 2
    mid = centre @ weight.T + bias
    spread = radius @ weight.abs().T
    slack = gamma(weight.shape[1] + 1) * (torch.maximum(lo.abs(), hi.abs()) @ weight.abs().T + bias.abs())
    return mid - spread - slack, mid + spread + slack


def monotone(function, box):
    """A rising activation (tanh, sigmoid, relu) on a box: its ends' images, a few units of rounding wider."""
    return function(box[0]) - 4 * UNIT, function(box[1]) + 4 * UNIT


def add(a, b):
    return a[0] + b[0], a[1] + b[1]


def product(a, b):
    """a * b elementwise: the extremes sit at the corners."""
    corners = torch.stack([a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]])
    lo, hi = corners.amin(dim=0), corners.amax(dim=0)
    slack = 2 * UNIT * torch.maximum(lo.abs(), hi.abs())
    return lo - slack, hi + slack


def blend(z, n, h):
    """The GRU's h' = (1 - z) n + z h: it rises with n and h and is linear in z, so its extremes sit at z's ends."""
    (z_lo, z_hi), (n_lo, n_hi), (h_lo, h_hi) = z, n, h
    low = torch.minimum((1 - z_lo) * n_lo + z_lo * h_lo, (1 - z_hi) * n_lo + z_hi * h_lo)
    high = torch.maximum((1 - z_lo) * n_hi + z_lo * h_hi, (1 - z_hi) * n_hi + z_hi * h_hi)
    return low - 8 * UNIT, high + 8 * UNIT


def chunks(box, count):
    """A box of count gates side by side (as PyTorch stacks them) as count boxes."""
    return list(zip(box[0].chunk(count, dim=1), box[1].chunk(count, dim=1)))


# ---------------------------------------------------------------- the rules composed per cell type
# each: (gates from the input, gates from the state, h, c, relu) -> (h', c'); c is None except for the LSTM


def plain_layer(gates_x, gates_h, h, c, relu):
    return monotone(torch.relu if relu else torch.tanh, add(gates_x, gates_h)), None


def gru_layer(gates_x, gates_h, h, c, relu):
    (xr, xz, xn), (hr, hz, hn) = chunks(gates_x, 3), chunks(gates_h, 3)
    r, z = monotone(torch.sigmoid, add(xr, hr)), monotone(torch.sigmoid, add(xz, hz))
    n = monotone(torch.tanh, add(xn, product(r, hn)))
    return blend(z, n, h), None


def lstm_layer(gates_x, gates_h, h, c, relu):
    i, f, g, o = chunks(add(gates_x, gates_h), 4)
    i, f, o = (monotone(torch.sigmoid, gate) for gate in (i, f, o))
    g = monotone(torch.tanh, g)
    fc, ig = product(f, c), product(i, g)
    c_new = (fc[0] + ig[0] - 4 * UNIT, fc[1] + ig[1] + 4 * UNIT)
    return product(o, monotone(torch.tanh, c_new)), c_new


LAYERS = {"rnn": plain_layer, "gru": gru_layer, "lstm": lstm_layer}


class IntervalCell:
    """The model's recurrence on boxes [lo, hi] of whole states (batched: (boxes, state size)), in float64:
    every layer's h, then (LSTM) every layer's c, as RnnClsNet.flat_state lays them out."""

    CHUNK = 50_000  # boxes carried at once: a million boxes (keys of four digits) would need gigabytes at once

    def __init__(self, model):
        rnn = model.rnn
        self.kind, self.layer = model.rnn_type, LAYERS[model.rnn_type]
        self.relu = self.kind == "rnn" and rnn.nonlinearity == "relu"
        self.layers, self.hidden = rnn.num_layers, rnn.hidden_size
        self.size = self.layers * self.hidden * (2 if self.kind == "lstm" else 1)  # of a whole (flat) state
        weight = lambda name: getattr(rnn, name).detach().double()  # noqa: E731
        self.w_ih = [weight(f"weight_ih_l{k}") for k in range(self.layers)]
        self.w_hh = [weight(f"weight_hh_l{k}") for k in range(self.layers)]
        self.b_ih = [weight(f"bias_ih_l{k}") for k in range(self.layers)]
        self.b_hh = [weight(f"bias_hh_l{k}") for k in range(self.layers)]
        self.embedding = model.embedding.weight.detach().double()
        # the first layer's input is one of a few embeddings: its gates once per token, not once per box
        self.token_gates = affine(self.w_ih[0], self.b_ih[0], (self.embedding, self.embedding))
        self.fc_w, self.fc_b = model.fc.weight.detach().double(), model.fc.bias.detach().double()

    def split(self, flat):
        """[h of every layer, (c of every layer)] -> per-layer lists."""
        parts = flat.reshape(flat.shape[0], -1, self.layers, self.hidden)
        return [parts[:, 0, k] for k in range(self.layers)], ([parts[:, 1, k] for k in range(self.layers)]
                                                              if self.kind == "lstm" else None)

    def step(self, lo, hi, digits):
        """The box that holds every state reachable from a state in [lo, hi] by reading the digit."""
        if len(lo) > self.CHUNK:
            parts = [self.step(lo[i:i + self.CHUNK], hi[i:i + self.CHUNK], digits[i:i + self.CHUNK])
                     for i in range(0, len(lo), self.CHUNK)]
            return torch.cat([lo for lo, _ in parts]), torch.cat([hi for _, hi in parts])
        (h_lo, c_lo), (h_hi, c_hi) = self.split(lo), self.split(hi)
        x, new_h, new_c = None, [], []
        for k in range(self.layers):
            c = None if c_lo is None else (c_lo[k], c_hi[k])
            gates_x = (self.token_gates[0][digits], self.token_gates[1][digits]) if k == 0 else \
                affine(self.w_ih[k], self.b_ih[k], x)
            gates_h = affine(self.w_hh[k], self.b_hh[k], (h_lo[k], h_hi[k]))
            x, c_new = self.layer(gates_x, gates_h, (h_lo[k], h_hi[k]), c, self.relu)
            new_h.append(x), new_c.append(c_new)
        kept = new_h + (new_c if self.kind == "lstm" else [])
        return torch.cat([lo for lo, _ in kept], dim=1), torch.cat([hi for _, hi in kept], dim=1)

    def readout_margin(self, lo, hi, labels):
        """Per box, the least by which the label's logit beats every other logit anywhere in the box.

        The difference of two logits is affine in h, so it is bounded directly (far tighter than two
        separate logit intervals); float32 may err on each logit by gamma(n) times its absolute terms.
        """
        if len(lo) > self.CHUNK // 10:  # (boxes, classes, hidden) at once
            return torch.cat([self.readout_margin(lo[i:i + self.CHUNK // 10], hi[i:i + self.CHUNK // 10],
                                                  labels[i:i + self.CHUNK // 10])
                              for i in range(0, len(lo), self.CHUNK // 10)])
        start = (self.layers - 1) * self.hidden
        h_lo, h_hi = lo[:, start:start + self.hidden], hi[:, start:start + self.hidden]
        centre, radius, size = (h_lo + h_hi) / 2, (h_hi - h_lo) / 2, torch.maximum(h_lo.abs(), h_hi.abs())
        diff_w = self.fc_w[labels][:, None, :] - self.fc_w[None, :, :]  # (boxes, classes, hidden)
        diff_b = self.fc_b[labels][:, None] - self.fc_b[None, :]
        low = (diff_w @ centre[..., None])[..., 0] - (diff_w.abs() @ radius[..., None])[..., 0] + diff_b
        each = size @ self.fc_w.abs().T + self.fc_b.abs()  # (boxes, classes): a logit's absolute terms
        low = low - gamma(self.hidden + 1) * (each.gather(1, labels[:, None]) + each)
        low[torch.arange(len(labels)), labels] = math.inf
        return low.amin(dim=1)
