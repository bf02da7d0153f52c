"""The independent proof checker (rnn_tutorial/check_proof.py): it accepts the certificates the audit writes for
proven hand-built adders, and refuses every kind of tampering, other weights, and bad input, with its exit
statuses (0 valid, 1 invalid naming the first failure, 2 bad input) and messages."""

import ast
import os

import pytest
import torch

import train_cls_rnn as T
from audit_fixtures import exact_adder
from conftest import ROOT, run_module, run_script
from rnn_tutorial import check_proof, runs
from rnn_tutorial.audit import certificate, judge, proof

QUICK = {"beam_sequences": 100_000, "max_length": 20, "gradient_sequences": 10_000}


def proven_certificate(model, base):
    result = judge.audit(model, {"max_number": base - 1}, **QUICK, certificate=True)
    assert result["proof"]["proven"]
    return certificate.certificate(model, base, result["proof"])


@pytest.fixture(scope="module")
def by_state():
    """The exact adder of ten digits, proven by boxes per automaton state (base cases of one digit)."""
    model = exact_adder()
    return model, proven_certificate(model, 10)


@pytest.fixture(scope="module")
def by_key():
    """The exact adder of three digits, proven by boxes keyed by the sum and the last two digits."""
    model = exact_adder(base=3)
    proven = proof.prove_with_keyed_boxes(model, 3, k=2, keep_boxes=True)
    assert proven["proven"] and proven["method"] == "keyed boxes"
    return model, certificate.certificate(model, 3, proven)


def tampered(cert, **changes):
    return {**cert, **{name: value(cert[name].clone()) if callable(value) else value for name, value in changes.items()}}


def test_the_checker_accepts_the_audits_certificates_of_proven_adders(by_state, by_key):
    for model, cert in (by_state, by_key):
        valid, message = check_proof.check(cert, model.state_dict())
        assert valid and message.startswith("valid: ") and "smallest read-out margin" in message
    assert by_state[1]["k"] == 1 and by_key[1]["k"] == 2 and len(by_key[1]["entry"]) == 9


def test_the_checkers_step_holds_the_float32_cells_own_states():
    """Random float32 states in a box, stepped by nn.RNN itself: every one lies in the checker's image of the box."""
    torch.manual_seed(0)
    model = T.build_model({"max_number": 9, "embed_dim": 10, "hidden_dim": 32, "num_layers": 1})
    cell = check_proof.Cell(model.state_dict())
    centre = torch.rand(1, 32) * 1.6 - 0.8
    lo, hi = centre.double() - 0.05, centre.double() + 0.05
    points = (centre + (torch.rand(500, 32) - 0.5) * 0.1).clamp(lo.float(), hi.float())
    for digit in range(10):
        image_lo, image_hi = cell.step(lo, hi, torch.tensor([digit]))
        with torch.no_grad():
            states = model.step(points[None], torch.full((500,), digit))[0][0].double()
        assert ((image_lo <= states) & (states <= image_hi)).all()
        assert ((image_hi - image_lo) <= (hi - lo) @ cell.w_hh.abs().T + 1e-5).all()  # and not vacuous


def test_the_checker_refuses_each_kind_of_tampering_naming_the_first_failure(by_state, by_key):
    model, cert = by_state
    state = model.rnn(model.embedding(torch.tensor([[0]])))[1][0, 0].double()  # after the sequence "0"
    entry = int(cert["entry"][0])
    unit = int(state.argmax())

    def shrunk(hi):
        hi[entry, unit] = state[unit] - 0.01  # region `entry` no longer holds the state it must
        return hi
    assert check_proof.check(tampered(cert, hi=shrunk), model.state_dict()) == (
        False, f"base case: the state after the sequence numbered 0 of 1 digits is not inside region {entry}")

    wrong_label = int((cert["labels"] != (cert["labels"][0] + 1) % 10).nonzero()[0])

    def redirected(nxt):
        nxt[0, 1] = wrong_label
        return nxt
    valid, message = check_proof.check(tampered(cert, next=redirected), model.state_dict())
    assert not valid and message.startswith("region 0, digit 1: its target ")

    def wide(lo):
        lo[5] = -1.0  # region 5 holds every state of its units' lower half too: its logits overlap others'
        return lo
    valid, message = check_proof.check(tampered(cert, lo=wide), model.state_dict())
    assert not valid and message.startswith("region 5: the read-out is not sure of label")

    missing = tampered(cert, lo=lambda x: x[:-1], hi=lambda x: x[:-1], labels=lambda x: x[:-1], next=lambda x: x[:-1])
    assert check_proof.check(missing, model.state_dict()) == (False, "a target, entry or label is out of range")

    changed = {name: value.clone() for name, value in model.state_dict().items()}
    changed["fc.bias"][3] += 1e-3  # one weight changed after the certificate was written
    assert check_proof.check(cert, changed) == (False, "the certificate is for other weights (their sha256 differs)")

    three, keyed = by_key  # another model's weights
    assert check_proof.check(keyed, exact_adder(base=3, strength=19.0).state_dict())[0] is False

    same_label = [r for r in range(len(keyed["labels"])) if keyed["labels"][r] == keyed["labels"][int(keyed["next"][4, 2])]
                  and r != int(keyed["next"][4, 2])]

    def other_key(nxt):
        nxt[4, 2] = same_label[0]  # the right sum, the wrong last digits: its image lies elsewhere
        return nxt
    assert check_proof.check(tampered(keyed, next=other_key), three.state_dict()) == (
        False, f"region 4, digit 2: its image is not inside its target region {same_label[0]}")


def write_run(folder, model):
    config = vars(T.parse_args(["--hidden_dim", str(model.rnn.hidden_size), "--embed_dim", str(model.embedding.weight.shape[1]),
                                "--max_number", str(model.fc.out_features - 1), "--save_dir", str(folder)]))
    os.makedirs(folder)
    runs.save_config(config, str(folder))
    runs.save_atomic(model.state_dict(), str(folder / "model_step_1.pt"))


def test_audit_writes_a_certificate_the_command_line_checker_accepts_and_exit_statuses(tmp_path, capsys):
    write_run(tmp_path / "exact", exact_adder())
    cert = tmp_path / "exact.cert"
    audited = run_module("rnn_tutorial.audit", "--save_dir", str(tmp_path / "exact"), "--beam_sequences", "100000",
                         "--gradient_sequences", "10000", "--max_length", "20", "--certificate", str(cert), timeout=300)
    assert audited.returncode == 0 and f"wrote the certificate {cert}" in audited.stdout, audited.stderr
    assert "the checker: valid: 100 regions" in audited.stdout
    good = run_module("rnn_tutorial.check_proof", str(cert), "--save_dir", str(tmp_path / "exact"))
    assert good.returncode == 0 and good.stdout.startswith("valid: 100 regions, 1,000 transitions"), good.stderr
    asked = run_script("predict_cls_rnn.py", "--save_dir", str(tmp_path / "exact"), *["7"] * 12)  # trained on 1-5
    assert asked.returncode == 0 and asked.stderr.splitlines()[1] == "audit: proven for every length (certificate checked)"
    assert asked.stdout.startswith("[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7] -> 4 ") and "extrapolation" not in asked.stdout
    write_run(tmp_path / "other", exact_adder(strength=19.0))
    other = run_module("rnn_tutorial.check_proof", str(cert), "--checkpoint", str(tmp_path / "other" / "model_step_1.pt"))
    assert other.returncode == 1 and other.stdout.strip() == \
        "invalid: the certificate is for other weights (their sha256 differs)"
    torch.save({"format": "something else"}, tmp_path / "foreign.cert")
    gru = T.RnnClsNet(vocab_size=10, embed_dim=10, hidden_dim=8, rnn_type="gru")
    torch.save(gru.state_dict(), tmp_path / "gru.pt")
    bad = run_module("rnn_tutorial.check_proof", str(tmp_path / "none.cert"), "--save_dir", str(tmp_path / "exact"))
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot read the certificate") and \
        "Traceback" not in bad.stderr
    for args, message in [  # the same main(), in this process
        ([str(cert), "--save_dir", str(tmp_path / "nothing")], "no run folder"),
        ([str(cert)], "give one of --save_dir and --checkpoint"),
        ([str(tmp_path / "foreign.cert"), "--save_dir", str(tmp_path / "exact")], "not a certificate of this checker"),
        ([str(cert), "--checkpoint", str(tmp_path / "gru.pt")], "not supported"),
    ]:
        assert check_proof.main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, (args, err)


def test_the_checker_is_small_and_imports_no_audit_nor_torch_nn():
    path = os.path.join(ROOT, "rnn_tutorial", "check_proof.py")
    source = open(path).read()
    assert len(source.splitlines()) <= 250
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported <= {"argparse", "hashlib", "os", "re", "sys", "torch"}, imported
    uses_nn = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute) and node.attr == "nn"]
    assert not uses_nn  # no torch.nn in its code: the weights are plain tensors


def test_a_recorded_proof_is_certified_from_its_kept_weights_and_a_refused_one_counts_as_not_proven(tmp_path):
    """study.py exact --certify: records.certified runs the proof's winning try again keeping its regions, writes the
    certificate and has the checker judge it; study.proven counts a proof whose certificate was refused as not
    proven, and the tables' sentence says so."""
    from rnn_tutorial import study
    from rnn_tutorial.audit import records
    model = exact_adder(base=3)
    flags = vars(T.parse_args(["--hidden_dim", "10", "--embed_dim", "3", "--max_number", "2"]))
    weights = tmp_path / "seed1.pt"
    torch.save(model.state_dict(), weights)
    keyed = proof.prove_with_keyed_boxes(model, 3, k=2)  # as a record holds it: no regions kept
    record = {"flags": flags, "audit": {"proof": keyed, "counterexample": None}}
    assert records.certify_pending(record)
    certified = records.certified(record, str(weights))
    assert certified["audit"]["certificate"]["checked"] and certified["audit"]["certificate"]["regions"] == 27
    assert not records.certify_pending(certified) and study.proven(certified) and study.certificate_checked(certified)
    refused = {**certified, "audit": {**certified["audit"], "certificate": {"checked": False, "message": "invalid"}}}
    assert not study.proven(refused) and study.verdict_of(refused) == "no counterexample, not proven"
    grid = [{"row": "reliable", "certified": 1, "refused": 1}]
    loops = [{"row": "reliable", "verdict": "proven", "seeds": [1]},
             {"row": "reliable", "verdict": "no counterexample, not proven", "seeds": [2]}]
    assert study.recipe_summary("reliable", loops, grid).endswith(
        "Certificates checked by the independent checker: 1 of the 1 proofs. The checker refused 1 proof: counted as "
        "not proven.")
