"""The shapes a proof's regions of hidden states take, and how the cell moves them: boxes and balls.

A domain holds no regions itself; it says what one is and answers, for a tuple of them, what
fixpoint.py asks: the read-out's margin on each, their images under every digit (region-major, in
the order of beam.each_digit_after), the images of the initial zero state, how images join a
region, whether the regions already hold what they must, and how they widen.

  Boxes  any cell (interval arithmetic, intervals.py); they suit saturated units, whose corners move
         little. Regions: (lo, hi).
  Balls  one layer of the plain tanh cell; around fixed centres, radii grown by the cell's Lipschitz
         bound on each ball; they suit a map that contracts near its states while mixing its units.
         Regions: (centres, radii).
"""

import math

import torch

from rnn_tutorial.audit.fixpoint import widened
from rnn_tutorial.audit.intervals import UNIT, IntervalCell, gamma
from rnn_tutorial.beam import each_digit_after


class Boxes:
    noun = "boxes"
    starts_with_entry = False  # the initial state's images join in the first round

    def __init__(self, model_or_cell):
        self.cell = model_or_cell if isinstance(model_or_cell, IntervalCell) else IntervalCell(model_or_cell)

    @staticmethod
    def start(members):
        """The smallest box around each group of visited states."""
        return torch.stack([m.amin(dim=0) for m in members]), torch.stack([m.amax(dim=0) for m in members])

    def margin(self, regions, labels):
        return self.cell.readout_margin(*regions, labels)

    def size_note(self, regions, index):
        lo, hi = regions
        return f" (widest side {float((hi - lo)[index].max()):.3g})"

    def step(self, regions, base):
        lo, hi = regions
        sources, digits = each_digit_after(len(lo), base)
        return self.cell.step(lo[sources], hi[sources], digits)

    def entry(self, base):
        """The images of the initial (zero) state under each digit."""
        zero = torch.zeros(base, self.cell.size, dtype=torch.float64)
        return self.cell.step(zero, zero, torch.arange(base))

    def centres(self, regions_or_images):
        return (regions_or_images[0] + regions_or_images[1]) / 2

    @staticmethod
    def cat(images, more):
        return torch.cat([images[0], more[0]]), torch.cat([images[1], more[1]])

    @staticmethod
    def append(regions, images, new):
        """The regions, and a new one for each image of `new` (the image itself)."""
        return torch.cat([regions[0], images[0][new]]), torch.cat([regions[1], images[1][new]])

    def join(self, regions, into, images):
        """Each region grown to hold the images sent into it (into: its index, or -1 for an image not placed)."""
        (lo, hi), (image_lo, image_hi), placed = regions, images, into >= 0
        into = into[placed][:, None].expand(-1, lo.shape[1])
        return (lo.scatter_reduce(0, into, image_lo[placed], "amin"),
                hi.scatter_reduce(0, into, image_hi[placed], "amax"))

    @staticmethod
    def holds(regions, needed):
        (lo, hi), (need_lo, need_hi) = regions, needed
        return not ((need_lo < lo) | (need_hi > hi)).any()

    @staticmethod
    def widen(regions, needed, by):
        return -widened(-regions[0], -needed[0], by), widened(regions[1], needed[1], by)

    @staticmethod
    def widest(regions):
        return float((regions[1] - regions[0]).max())

    @staticmethod
    def proof_note(regions):
        return ""


def balls_apply(model):
    """The ball domain is written for one layer of the plain tanh cell."""
    return model.rnn_type == "rnn" and model.rnn.nonlinearity == "tanh" and model.rnn.num_layers == 1


def tanh_cell_parts(model, base):
    """One layer of the plain tanh cell in float64, h' = tanh(w h + u[digit]): (w, u, and the parts of u,
    (embeddings, w_ih, b_ih, b_hh), which the float32 rounding bound needs)."""
    rnn = model.rnn
    weight = lambda name: getattr(rnn, name).detach().double()  # noqa: E731
    w, w_ih, b_ih, b_hh = weight("weight_hh_l0"), weight("weight_ih_l0"), weight("bias_ih_l0"), weight("bias_hh_l0")
    x = model.embedding.weight.detach().double()[:base]
    return w, x @ w_ih.T + b_ih + b_hh, (x, w_ih, b_ih, b_hh)  # u: (digit, hidden), each digit's share


def tanh_cell_stretch(w, pre, radius):
    """An upper bound on the Lipschitz constant (Euclidean) of h -> tanh(w h + u) on the ball of the given
    radius around a centre whose pre-activation w c + u is pre (..., hidden): the spectral norm of w with
    each row scaled by tanh's largest slope over the range that row's pre-activation can take."""
    reach = radius[..., None] * w.norm(dim=1)
    slope = 1 - torch.tanh(torch.clamp(pre.abs() - reach, min=0)) ** 2
    return torch.linalg.matrix_norm(slope[..., None] * w, ord=2) * (1 + 1e-9)


class Balls:
    """Around a centre c, a ball of radius r. For a digit d, the cell f(h) = tanh(W h + u_d) takes every point of
    the ball to within ||f(c) - c'|| + L r of the centre c' it is sent to (mean value theorem), where
    L = ||diag(g) W||_2 and g bounds tanh' over the ball's pre-activations; float32 rounding adds at most
    `slack` a step. Images: (their centres, L r, slack)."""

    noun = "balls"
    starts_with_entry = True  # a ball of radius 0 is no start: as wide as the initial state's images need at once

    def __init__(self, model, base):
        self.w, self.u, (x, w_ih, b_ih, b_hh) = tanh_cell_parts(model, base)
        n = self.w.shape[1]
        # float32: a pre-activation is a dot product of n + m terms and two biases, with |h| <= 1 (tanh states);
        # tanh passes its input's error on with slope <= 1 and adds a few units in the last place of its own
        self.slack = (gamma(n + w_ih.shape[1] + 2) * (self.w.abs().sum(dim=1) + x.abs() @ w_ih.abs().T + b_ih.abs()
                                                       + b_hh.abs()) + 4 * UNIT).norm(dim=1)  # (digit,)
        self.fc_w, self.fc_b = model.fc.weight.detach().double(), model.fc.bias.detach().double()
        self.rounding = 2 * gamma(n + 1) * float(self.fc_w.abs().sum(dim=1).max() + self.fc_b.abs().max())

    @staticmethod
    def start(members):
        """A ball of radius 0 at each group's mean."""
        centres = torch.stack([m.mean(dim=0) for m in members])
        return centres, torch.zeros(len(centres), dtype=torch.float64)

    def margin(self, regions, labels):
        centres, radius = regions
        diff_w = self.fc_w[labels][:, None, :] - self.fc_w[None, :, :]  # (ball, class, hidden)
        gap_at_centre = (diff_w @ centres[..., None])[..., 0] + self.fc_b[labels][:, None] - self.fc_b[None, :]
        gap = gap_at_centre - radius[:, None] * diff_w.norm(dim=2) - self.rounding
        gap[torch.arange(len(labels)), labels] = math.inf
        return gap.amin(dim=1)

    @staticmethod
    def size_note(regions, index):
        return f" (radius {float(regions[1][index]):.3g})"

    def step(self, regions, base):
        centres, radius = regions
        pre = (centres @ self.w.T)[:, None, :] + self.u[None, :, :]  # (ball, digit, hidden)
        spread = tanh_cell_stretch(self.w, pre, radius[:, None]) * radius[:, None]
        return torch.tanh(pre).flatten(0, 1), spread.flatten(), self.slack.repeat(len(centres))

    def entry(self, base):
        return torch.tanh(self.u), torch.zeros(base, dtype=torch.float64), self.slack

    @staticmethod
    def centres(regions_or_images):
        return regions_or_images[0]

    @staticmethod
    def cat(images, more):
        return tuple(torch.cat([a, b]) for a, b in zip(images, more))

    @staticmethod
    def join(regions, into, images):
        """Each radius grown to hold the images sent into it: how far an image's centre is from the ball's,
        plus the image's own spread and slack."""
        (centres, radius), (image, spread, slack) = regions, images
        need = (image - centres[into]).norm(dim=1) + spread + slack
        return centres, radius.scatter_reduce(0, into, need, "amax")

    @staticmethod
    def holds(regions, needed):
        return bool((needed[1] <= regions[1]).all())

    @staticmethod
    def widen(regions, needed, by):
        return regions[0], widened(regions[1], needed[1], by)

    @staticmethod
    def widest(regions):
        return float(2 * regions[1].max())

    @staticmethod
    def proof_note(regions):
        return f"; radii up to {float(regions[1].max()):.3g}"
