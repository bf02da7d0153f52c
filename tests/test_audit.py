"""The audit: families, the counterexample search, the automaton and the proof, on hand-built models
whose answers are known both ways, and the command line's exit statuses and verdict line."""

import os

import pytest
import torch

import train_cls_rnn as T
from audit_fixtures import exact_adder
from conftest import run_script
from rnn_tutorial import audit, runs

TEN = {"max_number": 9}


def test_families_are_fixed_and_hold_what_they_say():
    for family in audit.FAMILIES:
        first, again = audit.family_sequences(family, 10), audit.family_sequences(family, 10)
        assert all(torch.equal(a, b) for a, b in zip(first, again))  # seeded: the same every time
        assert all(int(group.min()) >= 0 and int(group.max()) <= 9 for group in first)
    by_name = {f.name: audit.family_sequences(f, 10) for f in audit.FAMILIES}
    (runs_of_one,) = by_name["one digit repeated"]
    assert runs_of_one.shape == (10, 2000) and all(set(row.tolist()) == {d} for d, row in enumerate(runs_of_one))
    (zeros,) = by_name["a digit, then zeros"]
    assert zeros[4].tolist() == [4] + [0] * 2000
    (sparse,) = by_name["sparse"]
    assert 0.005 < float((sparse != 0).float().mean()) < 0.04
    assert [g.shape[1] for g in by_name["random, 1,000 and 5,000 digits"]] == [1000, 5000]


def test_run_length_writes_long_runs_as_digit_x_count():
    assert audit.run_length([4] + [0] * 58) == "4 0x58"
    assert audit.run_length([3, 3, 7, 1, 1, 1]) == "3 3 7 1x3"


@pytest.mark.parametrize("rnn_type,layers", [("rnn", 1), ("gru", 1), ("lstm", 1), ("gru", 2), ("rnn", 3)])
def test_interval_step_matches_the_cell_and_holds_every_state_of_its_box(rnn_type, layers):
    torch.manual_seed(0)
    model = T.RnnClsNet(vocab_size=10, embed_dim=5, hidden_dim=7, num_layers=layers, rnn_type=rnn_type).eval()
    cell = audit.IntervalCell(model)
    hx, _ = audit.step(model, None, torch.arange(10))
    point = audit.flat_state(model, hx).double()
    digits = torch.tensor([3] * 10)
    lo, hi = cell.step(point, point, digits)  # a box of one point: the cell's own step, up to rounding
    exact = audit.flat_state(model, audit.step(model, hx, digits)[0]).double()
    assert torch.all(lo <= exact) and torch.all(exact <= hi) and float((hi - lo).max()) < 1e-5
    box_lo, box_hi = point.amin(dim=0, keepdim=True), point.amax(dim=0, keepdim=True)  # a box around them all
    image_lo, image_hi = cell.step(box_lo, box_hi, torch.tensor([3]))
    samples = box_lo + (box_hi - box_lo) * torch.rand(500, point.shape[1], dtype=torch.float64)
    stepped = audit.flat_state(model, audit.step(model, audit.unflat_state(model, samples.float()),
                                                 torch.full((500,), 3))[0]).double()
    assert torch.all(image_lo <= stepped) and torch.all(stepped <= image_hi)


def test_an_exact_adder_is_proven_for_every_length():
    model = exact_adder()
    result = audit.audit(model, TEN, search_budget_s=1, max_length=50)
    assert result["counterexample"] is None and all(f["wrong"] == 0 for f in result["families"])
    assert result["automaton"]["is_adder"] and result["automaton"]["quantisation_agrees"] == 1.0
    assert result["proof"]["proven"] and result["proof"]["min_margin"] > 1
    assert result["verdict"].startswith("no counterexample (") and result["verdict"].endswith(
        "); proven for every length")


def test_a_planted_flaw_is_found_shortest_first_and_refused_by_the_proof():
    model = exact_adder(swap=(3, 7))  # after a 0, a sum of 3 is taken for 7 and 7 for 3
    found, _ = audit.search(model, 10, max_length=20, budget_s=1)
    assert len(found) == 2 and found[-1] == 0 and audit.answer(model, found) != sum(found) % 10
    result = audit.audit(model, TEN, search_budget_s=1, max_length=50)
    shortest = result["counterexample"]["sequence"]
    assert len(shortest) == 2 and result["verdict"] == (f"counterexample {shortest[0]} 0 -> "
                                                        f"{7 if shortest[0] == 3 else 3} (truth {shortest[0]})")
    assert not result["automaton"]["is_adder"]
    assert result["automaton"]["table"][3][0] == 7 and result["automaton"]["table"][7][0] == 3
    states, sums, _ = audit.visited_states(model, 10)
    assert not audit.prove(model, 10, states, sums)["proven"]  # the boxes cannot be right: the map is wrong


def save_run(folder, model):
    """A run folder as train_cls_rnn.py writes it, holding a hand-built model."""
    config = vars(T.parse_args(["--hidden_dim", "101", "--embed_dim", "10", "--save_dir", str(folder),
                                "--run_name", "hand-built"]))
    os.makedirs(folder)
    runs.save_config(config, str(folder))
    runs.save_atomic(model.state_dict(), str(folder / "model_step_1.pt"))


def test_the_command_line_exit_statuses_and_verdict_line(tmp_path):
    save_run(tmp_path / "exact", exact_adder())
    save_run(tmp_path / "flawed", exact_adder(swap=(3, 7)))
    quick = ["--budget_s", "1", "--max_length", "20"]
    exact = run_script("rnn_tutorial/audit.py", "--save_dir", str(tmp_path / "exact"), *quick,
                       "--figure", str(tmp_path / "automaton.png"), timeout=300)
    assert exact.returncode == 0, exact.stderr
    assert exact.stdout.splitlines()[-1].endswith("; proven for every length")
    assert exact.stdout.splitlines()[-1].startswith("verdict: no counterexample (")
    assert open(tmp_path / "automaton.png", "rb").read(4) == b"\x89PNG"
    flawed = run_script("rnn_tutorial/audit.py", "--save_dir", str(tmp_path / "flawed"), *quick, timeout=300)
    assert flawed.returncode == 1 and flawed.stdout.splitlines()[-1] in (
        "verdict: counterexample 3 0 -> 7 (truth 3)", "verdict: counterexample 7 0 -> 3 (truth 7)")
    missing = run_script("rnn_tutorial/audit.py", "--save_dir", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nothing'} does not exist; train a model with train_cls_rnn.py first"]
    bad = run_script("rnn_tutorial/audit.py", "--max_length", "3")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
