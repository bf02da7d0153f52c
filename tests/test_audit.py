"""The audit: families, the counterexample search, the automaton and the proof, on hand-built models
whose answers are known both ways, and the command line's exit statuses and verdict line."""

import os

import pytest
import torch

import train_cls_rnn as T
from audit_fixtures import adder_fooled_by_nines, exact_adder
from conftest import run_module
from rnn_tutorial import runs
from rnn_tutorial.audit import (automaton, domains, dynamics, families, fixpoint, intervals, judge, partitions, proof,
                                 records, report, searches)

TEN = {"max_number": 9}


def test_families_are_fixed_and_hold_what_they_say():
    for family in families.FAMILIES:
        first, again = families.family_sequences(family, 10), families.family_sequences(family, 10)
        assert all(torch.equal(a, b) for a, b in zip(first, again))  # seeded: the same every time
        assert all(int(group.min()) >= 0 and int(group.max()) <= 9 for group in first)
    by_name = {f.name: families.family_sequences(f, 10) for f in families.FAMILIES}
    (runs_of_one,) = by_name["one digit repeated"]
    assert runs_of_one.shape == (10, 2000) and all(set(row.tolist()) == {d} for d, row in enumerate(runs_of_one))
    (zeros,) = by_name["a digit, then zeros"]
    assert zeros[4].tolist() == [4] + [0] * 2000
    (sparse,) = by_name["sparse"]
    assert 0.005 < float((sparse != 0).float().mean()) < 0.04
    assert [g.shape[1] for g in by_name["random, 1,000 and 5,000 digits"]] == [1000, 5000]


def test_run_length_writes_long_runs_as_digit_x_count():
    assert report.run_length([4] + [0] * 58) == "4 0x58"
    assert report.run_length([3, 3, 7, 1, 1, 1]) == "3 3 7 1x3"


@pytest.mark.parametrize("rnn_type,layers", [("rnn", 1), ("gru", 1), ("lstm", 1), ("gru", 2), ("rnn", 3)])
@torch.no_grad()
def test_interval_step_matches_the_cell_and_holds_every_state_of_its_box(rnn_type, layers):
    torch.manual_seed(0)
    model = T.RnnClsNet(vocab_size=10, embed_dim=5, hidden_dim=7, num_layers=layers, rnn_type=rnn_type).eval()
    cell = intervals.IntervalCell(model)
    hx, _ = model.step(None, torch.arange(10))
    point = automaton.flat_state(model, hx).double()
    digits = torch.tensor([3] * 10)
    lo, hi = cell.step(point, point, digits)  # a box of one point: the cell's own step, up to rounding
    exact = automaton.flat_state(model, model.step(hx, digits)[0]).double()
    assert torch.all(lo <= exact) and torch.all(exact <= hi) and float((hi - lo).max()) < 1e-5
    box_lo, box_hi = point.amin(dim=0, keepdim=True), point.amax(dim=0, keepdim=True)  # a box around them all
    image_lo, image_hi = cell.step(box_lo, box_hi, torch.tensor([3]))
    samples = box_lo + (box_hi - box_lo) * torch.rand(500, point.shape[1], dtype=torch.float64)
    stepped = automaton.flat_state(model, model.step(automaton.unflat_state(model, samples.float()),
                                                     torch.full((500,), 3))[0]).double()
    assert torch.all(image_lo <= stepped) and torch.all(stepped <= image_hi)


def test_an_exact_adder_is_proven_for_every_length():
    model = exact_adder()
    result = judge.audit(model, TEN, beam_sequences=1_000_000, max_length=50, gradient_sequences=200_000)
    assert result["counterexample"] is None and all(f["wrong"] == 0 for f in result["families"])
    assert result["automaton"]["is_adder"] and result["automaton"]["quantisation_agrees"] == 1.0
    assert result["proof"]["proven"] and result["proof"]["min_margin"] > 1
    assert result["verdict"].startswith("no counterexample (") and result["verdict"].endswith(
        "); proven for every length")


def test_a_planted_flaw_is_found_shortest_first_and_refused_by_the_proof():
    model = exact_adder(swap=(3, 7))  # after a 0, a sum of 3 is taken for 7 and 7 for 3
    found, _ = searches.search(model, 10, max_length=20, max_sequences=200_000)
    assert len(found) == 2 and found[-1] == 0 and searches.answer(model, found) != sum(found) % 10
    result = judge.audit(model, TEN, beam_sequences=1_000_000, max_length=50, gradient_sequences=200_000)
    shortest = result["counterexample"]["sequence"]
    assert len(shortest) == 2 and result["verdict"] == (f"counterexample {shortest[0]} 0 -> "
                                                        f"{7 if shortest[0] == 3 else 3} (truth {shortest[0]})")
    assert not result["automaton"]["is_adder"]
    assert result["automaton"]["table"][3][0] == 7 and result["automaton"]["table"][7][0] == 3
    states, sums, _ = automaton.visited_states(model, 10)
    refused = proof.prove(model, 10, states, sums)
    assert not refused["proven"]  # the boxes cannot be right: the map is wrong
    tried = [a["regions"].split(" boxes keyed")[1] for a in refused["attempts"] if "keyed" in a["regions"]]
    assert tried == [" by the sum and the last 2 digits", " by the sum and the last 3 digits",
                     " by the sum and the last 3 digits (up to 8 a key)",
                     " by the sum and the last 3 digits (up to 16 a key)"]  # every keyed try, the finer last


def test_the_gradient_search_follows_the_margin_to_a_flaw_random_digits_almost_never_hold():
    model = adder_fooled_by_nines()  # wrong from eight nines in a row on
    assert searches.answer(model, [9] * 8) == 0 and searches.answer(model, [1] + [9] * 7) == 4
    found, tried = searches.gradient_search(model, 10, max_sequences=20_000_000, lengths=(10,))
    assert found is not None and searches.answer(model, found) != sum(found) % 10 and found.count(9) >= 8
    random_digits = torch.randint(0, 10, (tried // 10, 10), generator=torch.Generator().manual_seed(0))
    assert not (searches.margins_at_every_prefix(model, random_digits, 10) <= 0).any()  # as many, drawn at random
    assert searches.gradient_search(exact_adder(), 10, max_sequences=200_000) == (None, 204_800)


def test_the_ball_stretch_bounds_how_far_the_cell_moves_any_two_points_of_a_ball():
    torch.manual_seed(3)
    w, u = 2 * torch.randn(12, 12, dtype=torch.float64), torch.randn(12, dtype=torch.float64)
    centre = torch.tanh(torch.randn(12, dtype=torch.float64))
    for radius in (0.01, 0.3, 2.0):
        bound = float(domains.tanh_cell_stretch(w, w @ centre + u, torch.tensor(radius, dtype=torch.float64)))
        directions = torch.nn.functional.normalize(torch.randn(4000, 12, dtype=torch.float64), dim=1)
        points = centre + radius * torch.rand(4000, 1, dtype=torch.float64) ** (1 / 12) * directions
        moved = (torch.tanh(points @ w.T + u) - torch.tanh(w @ centre + u)).norm(dim=1)
        assert float(moved.max()) <= bound * radius
        assert float(moved.max()) > 0.2 * bound * radius  # a bound, but not a vacuous one
    assert bound <= float(torch.linalg.matrix_norm(w, ord=2)) * (1 + 1e-9)  # never worse than tanh' <= 1


@pytest.mark.parametrize("base", [2, 3])
def test_balls_prove_a_contracting_adder_and_refuse_a_planted_flaw(base):
    model = exact_adder(base=base)  # saturated units: tanh' is tiny near every state, the map contracts
    states, sums, _ = automaton.visited_states(model, base)
    assert not proof.prove_with_balls(model, base, states.double(), sums, k=1)["proven"]  # one ball: too coarse
    proven = proof.prove_with_balls(model, base, states.double(), sums, k=4)
    assert proven["proven"] and proven["min_margin"] > 1 and proven["widest"] < 0.01
    flawed = exact_adder(base=base, swap=(1, 0) if base == 2 else (1, 2))
    states, sums, _ = automaton.visited_states(flawed, base)
    assert not any(proof.prove_with_balls(flawed, base, states.double(), sums, k=k)["proven"] for k in (1, 4, 16))
    gru = T.RnnClsNet(vocab_size=base, embed_dim=base, hidden_dim=4, rnn_type="gru")
    assert "one layer of the tanh cell" in proof.prove_with_balls(gru, base, states[:, :4].double(), sums)["reason"]


def test_widening_overshoots_only_the_bounds_that_must_grow():
    bound, need = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])
    assert fixpoint.widened(bound, need).tolist() == pytest.approx([2.1, 3.0])
    assert fixpoint.widened(bound, need, by=0.5).tolist() == pytest.approx([2.5, 3.0])


@pytest.mark.parametrize("modes, apart, widening", [(4, 1.0, 0.1), (8, 0.5, 0.5)])
def test_boxes_keyed_by_the_last_digits_prove_an_adder_and_refuse_flaws_near_and_far(modes, apart, widening):
    model = exact_adder(base=3)  # its units say the sum and the last digit, so keys of one digit are tight
    proven = proof.prove_with_keyed_boxes(intervals.IntervalCell(model), 3, 1, modes, apart, widening, keep_boxes=True)
    assert proven["proven"] and proven["boxes"] == 9 and proven["min_margin"] > 1 and proven["widest"] < 0.01
    kept = proven.pop("kept")  # the invariant, checked on real states: each lies in a box of its key
    key, (lo, hi) = kept["keys"], kept["regions"]
    digits = torch.randint(0, 3, (200, 40), generator=torch.Generator().manual_seed(0))
    states = model.rnn(model.embedding(digits))[0].detach().double()  # (sequence, position, units)
    wanted = (digits.cumsum(dim=1) % 3) * 3 + digits  # the sum so far and the last digit
    inside = (lo <= states[:, :, None]) & (states[:, :, None] <= hi)  # (sequence, position, box, unit)
    assert (inside.all(dim=3) & (key == wanted[..., None])).any(dim=2).all()
    assert proof.region_count(proven) == "9 boxes keyed by the sum and the last 1 digits" + (
        " (up to 8 a key)" if modes == 8 else "")
    near = exact_adder(base=3, swap=(1, 2))  # wrong on two digits
    assert "sequence of 2 digits" in proof.prove_with_keyed_boxes(intervals.IntervalCell(near), 3, k=2)["reason"]
    far = adder_fooled_by_nines()  # right on every sequence of up to 7 digits, wrong on eight nines
    assert searches.answer(far, [9] * 7) == 3 and searches.answer(far, [9] * 8) != 2
    refused = proof.prove_with_keyed_boxes(intervals.IntervalCell(far), 10, 3, modes, apart, widening)
    assert not refused["proven"] and "not sure of state" in refused["reason"]


def test_a_record_judged_since_the_searches_last_changed_has_only_its_proof_tried_again(tmp_path):
    model = exact_adder(base=3)
    flags = {"max_number": 2, "embed_dim": 3, "hidden_dim": 10, "num_layers": 1, "rnn_type": "rnn"}
    weights = tmp_path / "seed1.pt"
    torch.save(model.state_dict(), weights)
    judged = judge.summary(judge.audit(model, flags, beam_sequences=20_000, max_length=30, gradient_sequences=20_000))
    assert judged["proof"]["proven"]
    older = {**judged, "version": judge.PROOF_ONLY_SINCE, "seconds": -1.0,
             "proof": {"proven": False, "reason": "tried before"}, "verdict": "not proven: tried before"}
    again = records.reaudit({"flags": flags, "audit": older}, str(weights))["audit"]
    assert again["version"] == judge.VERSION and again["proof"]["proven"] and again["verdict"] == judged["verdict"]
    assert again["seconds"] == -1.0 and again["families"] == judged["families"]  # the rest kept, not judged again
    oldest = {**older, "version": judge.PROOF_ONLY_SINCE - 1}
    assert records.reaudit({"flags": flags, "audit": oldest}, str(weights))["audit"]["seconds"] >= 0  # all again
    # since PROOF_KEPT_SINCE the proof's earlier tries are unchanged: a proof found then stands, a failed one is redone
    kept = {**older, "version": judge.PROOF_KEPT_SINCE, "proof": {"proven": True, "reason": "found before"}}
    assert records.reaudit({"flags": flags, "audit": kept}, str(weights))["audit"]["proof"]["reason"] == "found before"
    failed = {**older, "version": judge.PROOF_KEPT_SINCE}
    assert records.reaudit({"flags": flags, "audit": failed}, str(weights))["audit"]["proof"]["proven"]
    # since TRIES_KEPT_SINCE the earlier tries fail as they did: only the keyed tries added after the record's version
    # are made, their outcome joins the record's attempts
    latest = {**older, "version": judge.VERSION - 1, "proof": {"proven": False, "reason": "every earlier try failed",
                                                                "attempts": [{"regions": "10 boxes", "proven": False}]}}
    added = [t for v, tries in proof.KEYED_TRIES_ADDED.items() if v > latest["version"] for t in tries]
    assert added and judge.VERSION - 1 >= judge.TRIES_KEPT_SINCE
    redone = records.reaudit({"flags": flags, "audit": latest}, str(weights))["audit"]
    assert redone["proof"]["proven"] and redone["proof"]["digits"] == added[0][0]
    assert redone["proof"]["modes"] == added[0][1] and len(redone["proof"]["attempts"]) == 2
    assert redone["seconds"] == -1.0 and redone["verdict"] == judged["verdict"]
    # a record judged by this version without the slowest loop (measured since) gets it, and nothing else changes
    unmeasured = {k: v for k, v in judged.items() if k != "slowest_loop"}
    assert records.stale({"audit": unmeasured}) and not records.stale({"audit": judged})
    measured = records.reaudit({"flags": flags, "audit": unmeasured}, str(weights))["audit"]
    assert measured == judged
    loop_before = {k: v for k, v in judged["slowest_loop"].items() if k != "network_per_digit"}  # measured before it
    assert records.stale({"audit": {**judged, "slowest_loop": loop_before}})
    assert records.reaudit({"flags": flags, "audit": {**judged, "slowest_loop": loop_before}}, str(weights))["audit"] \
        == judged
    failed_now = {**unmeasured, "proof": {"proven": False, "reason": "failed by this version"}}
    kept_as_is = records.reaudit({"flags": flags, "audit": failed_now}, str(weights))["audit"]
    assert kept_as_is["proof"]["reason"] == "failed by this version" and "slowest_loop" in kept_as_is


def test_interval_cell_carries_many_boxes_in_chunks_with_the_same_bounds():
    torch.manual_seed(0)
    model = T.RnnClsNet(vocab_size=10, embed_dim=5, hidden_dim=7, num_layers=1).eval()
    whole, chunked = intervals.IntervalCell(model), intervals.IntervalCell(model)
    chunked.CHUNK = 30  # 1,000 boxes: 34 steps of 30 (the last shorter), margins 100 at a time in threes
    lo = torch.rand(1000, 7, dtype=torch.float64) - 0.5
    hi, digits = lo + 0.1 * torch.rand(1000, 7, dtype=torch.float64), torch.arange(1000) % 10
    labels = digits.flip(0)
    assert all(torch.equal(a, b) for a, b in zip(whole.step(lo, hi, digits), chunked.step(lo, hi, digits)))
    assert torch.equal(whole.readout_margin(lo, hi, labels), chunked.readout_margin(lo, hi, labels))


def test_the_deep_try_judges_again_only_an_unproven_record_without_counterexample(tmp_path, monkeypatch):
    model, far = exact_adder(base=3), adder_fooled_by_nines()
    flags = {"max_number": 2, "embed_dim": 3, "hidden_dim": 10, "num_layers": 1, "rnn_type": "rnn"}
    weights, far_weights = tmp_path / "seed1.pt", tmp_path / "seed2.pt"
    torch.save(model.state_dict(), weights), torch.save(far.state_dict(), far_weights)
    judged = judge.summary(judge.audit(model, flags, beam_sequences=20_000, max_length=30, gradient_sequences=20_000))
    failed = {**judged, "proof": {"proven": False, "reason": "boxes grew", "attempts": [{"proven": False}]}}
    assert records.deep_pending({"audit": failed}) and not records.deep_pending({"audit": judged})
    assert not records.deep_pending({"audit": {**failed, "counterexample": {"sequence": [1]}}})
    monkeypatch.setattr(proof, "DEEP_TRY", (1, 4, 1.0, 0.1))  # one digit is all this adder keeps: proven
    monkeypatch.setattr(proof, "DEEP_ROUNDS", 30)
    deepened = records.deepened({"flags": flags, "audit": failed}, str(weights))["audit"]
    assert deepened["proof"]["proven"] and deepened["proof"]["deep"] and not records.deep_pending({"audit": deepened})
    assert deepened["verdict"].endswith("proven for every length") and len(deepened["proof"]["attempts"]) == 2
    assert deepened["families"] == judged["families"]  # only the proof is judged again
    # a flawed network (eight nines) stays unproven: the deep try's reason is added, and it is not tried again
    monkeypatch.setattr(proof, "DEEP_TRY", (2, 4, 1.0, 0.1))
    ten = {**flags, "max_number": 9, "embed_dim": 10, "hidden_dim": far.rnn.hidden_size}
    refused = records.deepened({"flags": ten, "audit": failed}, str(far_weights))["audit"]
    assert not refused["proof"]["proven"] and refused["proof"]["reason"].startswith("boxes grew; ")
    assert "keyed by the sum and the last 2 digits" in refused["proof"]["reason"]
    assert not records.deep_pending({"audit": refused}) and refused["verdict"].startswith("no counterexample (")
    # boxes that multiply (an image farther than 1e-9 from every box of its key starts one) stop at the bound
    multiplied = proof.prove_with_keyed_boxes(intervals.IntervalCell(far), 10, 1, 4, 1e-9, 0.1, 30)
    bounded = proof.prove_with_keyed_boxes(intervals.IntervalCell(far), 10, 1, 4, 1e-9, 0.1, 30, most_boxes=150)
    assert multiplied["boxes"] > 150 and bounded["reason"].startswith("more than 150 boxes in round ")
    # in a whole audit (python -m rnn_tutorial.audit --deep) the deep try comes last, after the others have failed
    _, states, sums, _ = automaton.extract_automaton(far, 10)
    tries = {"regions_per_state": (1,), "rounds": 5, "keyed_tries": ((1, 4, 1.0, 0.1, None),), "keyed_rounds": 3}
    plain, deep = (proof.prove(far, 10, states, sums, **tries, deep=d)["attempts"] for d in (False, True))
    assert deep[:-1] == plain and "keyed by the sum and the last 2 digits" in deep[-1]["regions"]


def test_stretch_measures_one_step_and_when_products_of_steps_contract():
    saturated = dynamics.stretch(exact_adder(), 10, automaton.visited_states(exact_adder(), 10)[0])
    assert saturated["step_max"] < 1e-3 and saturated["box_max"] < 1e-3 and saturated["contracts_from"] == 1
    doubling = T.RnnClsNet(vocab_size=10, embed_dim=10, hidden_dim=8)  # h stays 0, where tanh' = 1: J = 2 I
    with torch.no_grad():
        for parameter in doubling.parameters():
            parameter.zero_()
        doubling.rnn.weight_hh_l0.copy_(2 * torch.eye(8))
    grown = dynamics.stretch(doubling, 10, torch.zeros(5, 8))
    assert grown["step_max"] == pytest.approx(2) and grown["box_max"] == pytest.approx(2)
    assert grown["contracts_from"] is None
    assert dynamics.stretch(T.RnnClsNet(vocab_size=10, embed_dim=10, hidden_dim=8, rnn_type="gru"), 10, None) is None


def test_necklaces_name_every_periodic_input_once():
    assert list(dynamics.necklaces(2, 3)) == [(0,), (1,), (0, 1), (0, 0, 1), (0, 1, 1)]
    assert len(list(dynamics.necklaces(10, 3))) == 10 + 45 + 330  # primitive words up to rotation


def test_a_box_cannot_follow_a_network_that_forgets_by_mixing_its_units():
    turning = T.RnnClsNet(vocab_size=10, embed_dim=10, hidden_dim=2)  # at the state 0 on every digit: h' = 0.8 R h
    with torch.no_grad():
        for parameter in turning.parameters():
            parameter.zero_()
        turning.rnn.weight_hh_l0.copy_(0.8 * torch.tensor([[1.0, -1.0], [1.0, 1.0]]) / 2**0.5)  # R turns by 45°
    loop = dynamics.slowest_loop(turning, 10)
    assert loop["network_per_digit"] == pytest.approx(0.8)  # differences shrink by 0.8 a digit
    assert loop["per_digit"] == pytest.approx(0.8 * 2**0.5)  # a box's corners grow by 0.8 (cos + sin) a digit


def test_the_slowest_loop_is_the_input_a_network_forgets_slowest_on():
    slow = T.RnnClsNet(vocab_size=10, embed_dim=10, hidden_dim=2)  # unit 0 halves on a 0, saturates on the rest
    with torch.no_grad():
        for parameter in slow.parameters():
            parameter.zero_()
        slow.embedding.weight[:10] = torch.eye(10)
        slow.rnn.weight_ih_l0[0, 1:] = 10.0
        slow.rnn.weight_hh_l0[0, 0] = 0.5
    loop = dynamics.slowest_loop(slow, 10)
    assert loop["word"] == [0] and loop["lap"] == 1 and loop["per_digit"] == pytest.approx(0.5)
    assert loop["network_per_digit"] == pytest.approx(0.5)  # one unit: what the network forgets, a box forgets
    assert dynamics.slowest_loop(exact_adder(), 10)["per_digit"] < 1e-3  # saturated everywhere: boxes shrink at once
    assert dynamics.slowest_loop(T.RnnClsNet(vocab_size=10, embed_dim=10, hidden_dim=8, rnn_type="gru"), 10) is None


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
    quick = ["--beam_sequences", "200000", "--gradient_sequences", "200000", "--max_length", "20"]
    exact = run_module("rnn_tutorial.audit", "--save_dir", str(tmp_path / "exact"), *quick,
                       "--figure", str(tmp_path / "automaton.png"), timeout=300)
    assert exact.returncode == 0, exact.stderr
    assert exact.stdout.splitlines()[-1].endswith("; proven for every length")
    assert exact.stdout.splitlines()[-1].startswith("verdict: no counterexample (")
    assert open(tmp_path / "automaton.png", "rb").read(4) == b"\x89PNG"
    flawed = run_module("rnn_tutorial.audit", "--save_dir", str(tmp_path / "flawed"), *quick, timeout=300)
    assert flawed.returncode == 1 and flawed.stdout.splitlines()[-1] in (
        "verdict: counterexample 3 0 -> 7 (truth 3)", "verdict: counterexample 7 0 -> 3 (truth 7)")
    missing = run_module("rnn_tutorial.audit", "--save_dir", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nothing'} does not exist; train a model with train_cls_rnn.py first"]
    for flags in (["--max_length", "3"], ["--keyed_rounds", "0"]):
        bad = run_module("rnn_tutorial.audit", *flags)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr and flags[0] in bad.stderr


@pytest.mark.parametrize("domain, partition", [("boxes", "state"), ("balls", "state"), ("boxes", "key")])
def test_the_one_fixpoint_engine_proves_an_adder_and_refuses_a_flaw_in_each_domain_and_partition(domain, partition):
    """grow_to_fixpoint with each domain (boxes, balls) and each partition (by automaton state, by the sum and the
    last digit): a hand-built adder is proven with a wide margin, the same adder with two states swapped is not."""
    def attempt(model, rounds=100):
        states, sums, _ = automaton.visited_states(model, 3)
        regions = domains.Boxes(model) if domain == "boxes" else domains.Balls(model, 3)
        split = partitions.ByState(states.double(), sums, 3, 4) if partition == "state" else partitions.ByKey(3, 1)
        return fixpoint.grow_to_fixpoint(regions, split, rounds)

    proven = attempt(exact_adder(base=3))
    assert proven["proven"] and proven["min_margin"] > 1 and proven["reason"].startswith("fixpoint after ")
    assert proven["method"] == ("keyed boxes" if partition == "key" else domain)
    refused = attempt(exact_adder(base=3, swap=(1, 2)))
    assert not refused["proven"] and "not sure of" in refused["reason"]
    stopped = attempt(exact_adder(base=3), rounds=0)  # no round run: nothing proven, and the reason says so
    assert not stopped["proven"] and stopped["reason"].startswith("no fixpoint within 0 rounds")


def test_nearest_box_of_key_gives_the_same_answer_whatever_its_chunks(monkeypatch):
    """The point-box distances are computed in chunks so that 16 boxes a key fit in memory: chunks of 3 rows give
    the same boxes and the same new ones as one chunk."""
    generator = torch.Generator().manual_seed(0)
    centres, key = torch.randn(40, 5, generator=generator, dtype=torch.float64), torch.arange(40) % 7
    points, wanted = torch.randn(200, 5, generator=generator, dtype=torch.float64) * 2, torch.randint(0, 9, (200,))
    whole = partitions.nearest_box_of_key(points, wanted, centres, key, modes=8, apart=4.0)
    monkeypatch.setattr(partitions, "DISTANCES_AT_ONCE", 3)
    chunked = partitions.nearest_box_of_key(points, wanted, centres, key, modes=8, apart=4.0)
    assert torch.equal(whole[0], chunked[0]) and torch.equal(whole[1], chunked[1])
    assert (whole[0] == -1).any() and len(whole[1]) and (whole[0] >= 0).sum() > 50  # each kind of answer is tested
