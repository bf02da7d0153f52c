"""The study: its statistics and tables on hand-made records, the view inside on a tiny run, its figures."""

import json
import math
import os

import pytest
import torch


import train_cls_rnn as T
from rnn_tutorial import experiments, figures, inside, scoring, study, sweep
from rnn_tutorial.audit import judge, proof

PNG = b"\x89PNG\r\n\x1a\n"


def test_wilson_interval_of_none_all_and_some():
    assert study.wilson_interval(0, 20)[0] == 0 and study.wilson_interval(0, 20)[1] == pytest.approx(0.161, abs=1e-3)
    assert study.wilson_interval(20, 20)[0] == pytest.approx(0.839, abs=1e-3)
    low, high = study.wilson_interval(5, 20)
    assert low < 0.25 < high and (low, high) == pytest.approx((0.112, 0.469), abs=1e-3)


def test_every_audited_recipe_is_within_twice_the_articles_sequences_and_reliable_is_the_plain_cell():
    parser = T.build_parser()

    def sequences(name):
        flags = parser.parse_args(experiments.EXPERIMENTS[name])
        return flags.batch_size * flags.total_steps

    article = sequences("sota_warmup")
    assert article == 1_280_000
    assert all(sequences(name) <= 2 * article for name in study.RECIPES)
    reliable = parser.parse_args(experiments.EXPERIMENTS["reliable"])
    assert reliable.rnn_type == "rnn" and reliable.digit_skew > 0 and reliable.state_noise > 0
    assert reliable.hard_share > 0 and reliable.hard_max_len == 0  # hard sequences of the trained lengths only
    assert reliable.stretch_penalty > 0 and reliable.restart_by > 0
    # each variant is a recipe with one flag changed, and nothing else: the ingredients off, the noise's level
    variants = [("reliable_no_stretch", "reliable_no_restart", "stretch_penalty"),
                ("reliable_stretch_0.3", "reliable_no_restart", "stretch_penalty"),
                ("reliable_hard_20_stretch", "reliable_no_restart", "hard_max_len"),
                ("reliable_hard_every_500", "reliable_no_stretch", "eval_every"),
                ("reliable_no_hard", "reliable_hard_every_500", "hard_share"),
                ("reliable_hard_20", "reliable_hard_every_500", "hard_max_len"),
                ("reliable_hard_0.5", "reliable_hard_every_500", "hard_share"),
                ("reliable_hard_when_found", "reliable_hard_every_500", "state_noise_from"),
                ("reliable_noise_once_found", "reliable_no_stretch", "state_noise_from"),
                ("reliable_no_noise", "reliable_no_hard", "state_noise"),
                ("reliable_no_skew", "reliable_no_hard", "digit_skew"),
                ("reliable_noise_0.1", "reliable_no_hard", "state_noise"),
                ("reliable_noise_0.3", "reliable_no_hard", "state_noise"),
                ("reliable_noise_0.1_no_skew", "reliable_noise_0.1", "digit_skew"),
                ("reliable_noise_when_found", "reliable_no_hard", "state_noise_from"),
                ("reliable_every_digit", "reliable_no_hard", "loss_at"),
                ("reliable_rnn_b128", "reliable_no_noise", "digit_skew"),
                ("reliable_b64_no_noise", "reliable_b64", "state_noise"),
                ("reliable_forget", "reliable_no_restart", "forget_penalty"),
                ("reliable_forget_0.3", "reliable_no_restart", "forget_penalty"),
                ("reliable_harden_by_6000", "reliable_no_restart", "harden_by"),
                ("reliable_harden_by_8000", "reliable_no_restart", "harden_by"),
                ("reliable", "reliable_no_restart", "restart_by"),
                ("reliable_restart_by_3000", "reliable_no_restart", "restart_by")]
    for name, recipe, changed_flag in variants:
        recipe_flags = vars(parser.parse_args(experiments.EXPERIMENTS[recipe]))
        changed = {k for k, v in vars(parser.parse_args(experiments.EXPERIMENTS[name])).items()
                   if v != recipe_flags[k]}
        assert changed == {changed_flag}, name
    assert {name for name, _, _ in variants} <= set(study.RECIPES)


def test_with_flags_replaces_or_adds():
    base = ["--hidden_dim", "32", "--lr", "0.005"]
    assert experiments.with_flags(base, lr=0.002, min_seq_len=1) == ["--hidden_dim", "32", "--lr", "0.002",
                                                               "--min_seq_len", "1"]
    assert base == ["--hidden_dim", "32", "--lr", "0.005"]


def test_every_ablation_row_is_a_command_train_cls_rnn_accepts():
    tasks = study.ablation_tasks(list(study.ABLATION), [1], seeds_given=True)
    assert len(tasks) == len(study.ABLATION)
    configs = [study.sweep.task_config(t) for t in tasks]  # raises if a row's flags were refused
    assert configs[0]["warmup_step"] == 2000 and configs[0]["hidden_dim"] == 32
    by_row = dict(zip(study.ABLATION, configs))
    assert by_row["cosine ends at min_lr"]["cosine_span"] == "after_warmup"
    assert by_row["warmup 100 (= sota)"] == dict(by_row["sota_warmup"], warmup_step=100)


def test_pilot_rows_run_on_their_own_seeds_unless_seeds_are_given():
    pilot = next(iter(study.PILOTS))
    default = study.ablation_tasks(["lr 0.002", pilot], list(range(1, 11)))
    assert [t.seed for t in default if t.name == "lr 0.002"] == list(range(1, 11))
    assert [t.seed for t in default if t.name == pilot] == study.PILOTS[pilot]
    given = study.ablation_tasks([pilot], [3, 4], seeds_given=True)
    assert [t.seed for t in given] == [3, 4]


def record(name, seed, accuracy, long=0.1, reached=None):
    curve = [{"step": s, "loss": 1.0, "accuracy": accuracy if reached and s >= reached else 0.5, "accuracy_long": 0.1}
             for s in range(500, 2001, 500)]
    return {"run_name": name, "seed": seed, "test_accuracy": accuracy, "converged": accuracy >= 0.99,
            "flags": {"min_seq_len": 2, "max_seq_len": 5},
            "accuracy_longer": {"6-10": long, "11-20": long, "21-50": long}, "eval_curve": curve, "wall_time_s": 10.0}


def test_claims_count_the_seeds_that_reach_each_claim():
    runs = [record("baseline", s, a) for s, a in ((1, 0.8), (2, 0.4), (3, 0.3))]
    runs += [record("large_batch", s, a) for s, a in ((1, 0.5), (2, 0.5), (3, 0.2))]
    runs += [record("sota_warmup", s, a, long=l) for s, a, l in ((1, 1.0, 0.95), (2, 0.5, 0.1))]
    rows = {(r["run_name"], r["claim"][:6]): r for r in study.claim_rows(runs)}
    assert (rows[("baseline", "about ")]["k"], rows[("baseline", "about ")]["n"]) == (1, 3)
    assert rows[("large_batch", "lower ")]["k"] == 2  # seeds 1 and 3 end below the baseline's same seed
    assert rows[("sota_warmup", "conver")]["k"] == 1 and rows[("sota_warmup", "right ")]["k"] == 1
    none = study.claim_rows([record("deeper_rnn", s, 0.5) for s in range(1, 21)])[0]
    assert none["k"] == 0 and none["verdict"].startswith("out of reach") and "16%" in none["verdict"]
    assert none["article_chance"] == 0 and rows[("sota_warmup", "conver")]["article_chance"] == 0.5 ** 3


def test_ablation_rows_count_converged_seeds_and_median_steps():
    runs = [record("lengths 1-5", 1, 1.0, long=0.99, reached=1000), record("lengths 1-5", 2, 1.0, long=0.97,
                                                                           reached=2000),
            record("lengths 1-5", 3, 0.5)]
    (row,) = study.ablation_rows(runs)
    assert (row["converged"], row["converged_2_5"], row["extrapolating"], row["seeds"]) == (2, 2, 1, 3)
    assert row["median_steps_to_99"] == 2000 and row["min_accuracy_21_50"] == 0.1
    assert row["command"].startswith("python train_cls_rnn.py --hidden_dim 32") and "--min_seq_len 1" in row["command"]
    table = study.ablation_table([row], full=3)
    assert "| lengths 1-5 | one-digit sequences added | 2 of 3 | 2 of 3 | 1 of 3 |" in table and "| 2k |" in table


def test_runs_trained_on_other_lengths_are_judged_at_lengths_2_to_5():
    by_length = {str(n): 1.0 if n <= 5 else 0.8 for n in range(1, 51)}  # right on 2-5, wrong beyond
    wide = dict(record("lengths 2-10", 1, 0.9), flags={"min_seq_len": 2, "max_seq_len": 10},
                accuracy_by_length=by_length)
    assert scoring.accuracy_at_article_lengths(wide) == 1.0
    (row,) = study.ablation_rows([wide])
    assert (row["converged_2_5"], row["converged"]) == (1, 0)
    assert scoring.accuracy_at_article_lengths(record("sota", 1, 0.93)) == 0.93
    (never,) = study.ablation_rows([record("gru", 1, 0.5), record("gru", 2, 0.5)])
    assert never["median_steps_to_99"] is None and "| never |" in study.ablation_table([never])
    assert "Pilots, on fewer than 10 seeds" in study.ablation_table([never])


def test_look_inside_a_tiny_run():
    run = inside.look_inside("baseline", 1, ("--total_steps", "200", "--eval_every", "100", "--eval_samples", "200"))
    assert [p["step"] for p in run["curve"]] == [100, 200]
    assert all({"accuracy", "accuracy_mod2", "accuracy_mod5"} <= set(p) for p in run["curve"])
    pca = run["pca"]
    assert len(pca["points"]) == len(pca["sum_mod"]) == inside.PCA_SEQUENCES and len(pca["points"][0]) == 3
    assert set(pca["lengths"]) == {2, 3, 4, 5}  # spread over every trained length
    assert pca["explained_variance"] == sorted(pca["explained_variance"], reverse=True)
    assert 0 < sum(pca["explained_variance"]) <= 1.0001 and 0 < pca["share_of_all_variance"] <= 1.0001


def test_class_mean_directions_find_the_classes():
    """Ten classes on a circle in 2 of 16 dimensions, buried in larger noise along the other 14."""
    torch.manual_seed(0)
    labels = torch.arange(1000) % 10
    angle = labels * 2 * math.pi / 10
    states = torch.randn(1000, 16) * torch.tensor([0.05, 0.05] + [1.0] * 14)
    states[:, 0] += torch.cos(angle)
    states[:, 1] += torch.sin(angle)
    projection, explained, _ = inside.principal_components(states, labels, k=2)
    assert sum(explained) > 0.85  # the means lie (nearly) in a plane
    radius = projection.norm(dim=1)
    assert abs(radius.mean().item() - 1) < 0.15  # and the points on the circle, not in the noise


def test_study_figures_from_a_hand_made_study(tmp_path):
    tiny = inside.look_inside("baseline", 2, ("--total_steps", "150", "--eval_every", "50", "--eval_samples", "100"))
    hand_made = {
        "luck": {"seeds": [1, 2], "runs": [record(n, s, 0.2 * s) for n in experiments.ARTICLE_SIX for s in (1, 2)]},
        "inside": {"runs": [tiny, dict(tiny, seed=3)]},
    }
    (tmp_path / "study.json").write_text(json.dumps(hand_made))
    written = figures.draw_study(str(tmp_path / "study.json"), str(tmp_path))
    assert [os.path.basename(p) for p in written] == ["luck.png", "residues_over_time.png", "hidden_states.png"]
    for path in written:
        assert open(path, "rb").read(8) == PNG and os.path.getsize(path) > 5000


def test_cluster_separation_tells_apart_separate_and_folded_classes():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat(50)
    centres = torch.stack([torch.tensor([float(c), 0.0]) for c in range(10)])
    separate = centres[labels] + 0.05 * torch.randn(500, 2, generator=generator)
    assert inside.cluster_separation(separate, labels) > 5
    folded = centres[labels % 5] + 0.05 * torch.randn(500, 2, generator=generator)  # s and s+5 in one place
    assert inside.cluster_separation(folded, labels) < 0.5


def test_the_grid_says_what_each_recipe_trains_with_and_splits_off_fresh_seeds():
    def run(name, seed, proven, **flags):
        flags = {"rnn_type": "rnn", "batch_size": 128, "max_seq_len": 10, "eval_every": 100, **flags}
        return {"run_name": name, "seed": seed, "flags": flags, "converged": seed != 2,
                "audit": {"counterexample": None if seed != 3 else {"sequence": [1]}, "proof": {"proven": proven}}}

    chosen = [run("a", seed, proven=seed < 5, digit_skew=1.0, hard_share=0.25) for seed in range(1, 23)]
    screen = [run("b", seed, proven=False, rnn_type="gru", state_noise=0.2, state_noise_from="found")
              for seed in (3, 25)]
    penalties = [run("c", 17, proven=True, stretch_penalty=0.1, forget_penalty=0.3, harden_by=8000),
                 run("d", 23, proven=True, stretch_penalty=0.1, restart_by=6000)]
    rows = study.grid_rows(chosen + screen + penalties)
    assert [(r["row"], r["seeds"][0], len(r["seeds"])) for r in rows] == [("a", 1, 20), ("a, fresh seeds", 21, 2),
                                                                         ("b", 3, 2), ("c", 17, 1), ("d", 23, 1)]
    table = study.grid_table(rows).splitlines()
    assert table[2] == ("| a | rnn | 128 | 1 | – | 0.25 (10), every 100 | – | 1–20 | 19 of 20 | 19 of 20 | "
                        "4 of 20 | 0 of 20 |")
    assert table[3].endswith("| 21–22 | 2 of 2 | 2 of 2 | 0 of 2 | 0 of 2 |")
    assert table[4] == "| b | gru | 128 | – | 0.2 once found | – | – | 3, 25 | 2 of 2 | 1 of 2 | 0 of 2 | 0 of 2 |"
    # the checker's answer: a checked proof counts in both columns, a refused one in neither
    chosen[0]["audit"]["certificate"] = {"checked": True}
    chosen[1]["audit"]["certificate"] = {"checked": False}
    assert study.grid_table(study.grid_rows(chosen)).splitlines()[2].endswith("| 19 of 20 | 3 of 20 | 1 of 20 |")
    assert "| 0.1, forget 0.3 (hardened by step 8000 if not found) | 17 |" in table[5]
    assert "| 0.1 (started again at step 6000 if not found) | 23 |" in table[6]
    screened = [run("reliable_forget_0.3", seed, proven=True) for seed in [*range(1, 21), 25]]
    assert [r["row"] for r in study.grid_rows(screened)] == ["reliable_forget_0.3",  # its later seeds: not fresh
                                                            "reliable_forget_0.3, the seeds it was screened on"]


def test_the_loop_table_groups_seeds_by_verdict_and_names_the_few_unproven_ones_loops():
    def run(name, seed, proven, wrong=False, factor=0.1, word=(0,), forgets=None):
        loop = {"word": list(word), "per_digit": factor, "lap": len(word)} if factor is not None else None
        if forgets is not None:
            loop["network_per_digit"] = forgets
        return {"run_name": name, "seed": seed, "audit": {"proof": {"proven": proven}, "slowest_loop": loop,
                                                           "counterexample": {"sequence": [1]} if wrong else None}}

    runs = [run("a", s, proven=True, factor=s / 100) for s in range(1, 8)] + [
        run("a", 16, proven=False, factor=0.8, forgets=0.5), run("a", 17, proven=False, factor=0.87, word=(2, 9, 9),
                                                                 forgets=0.7),
        run("a", 18, proven=False, wrong=True, factor=2.5, word=(0, 5, 2)),  # measured before the difference was
        run("b", 1, proven=True), run("b", 2, proven=True, factor=None)]  # b: a record without the measure
    rows = study.loop_rows(runs)
    assert [(r["row"], r["verdict"], r["seeds"]) for r in rows] == [
        ("a", "proven", list(range(1, 8))), ("a", "no counterexample, not proven", [16, 17]),
        ("a", "counterexample", [18])]
    table = study.loop_table(rows).splitlines()
    assert table[2] == "| a | proven | 7 | 0.04 (0.01–0.07) | – |  |"  # too many to name
    assert table[3] == ("| a | no counterexample, not proven | 2 | 0.83 (0.80–0.87) | 0.60 (0.50–0.70) "
                        "| 16: `0` 0.80 (0.50); 17: `2 9 9` 0.87 (0.70) |")
    assert table[4] == "| a | counterexample | 1 | 2.50 (2.50–2.50) | – | 18: `0 5 2` 2.50 |"


def test_the_recipe_sentence_counts_the_seeds_run_after_the_recipe_was_chosen_apart():
    """Seeds 1-20 chose the recipe, so the sentence gives the later seeds' counts on their own; a recipe recorded on
    one side of seed 21 only gets no such clause."""
    loops = [{"row": "r", "verdict": "proven", "seeds": [1, 2, 21, 22, 23]},
             {"row": "r", "verdict": "no counterexample, not proven", "seeds": [24]},
             {"row": "r", "verdict": "counterexample", "seeds": [8, 25]}]
    sentence = study.recipe_summary("r", loops)
    assert sentence.startswith("`r`, over the 8 seeds recorded (")
    assert "no counterexample found on 6, a counterexample on 2 (seeds 8, 25); proven right for every length on 5;" \
        in sentence
    assert sentence.endswith("On the 5 seeds from 21 on, run once the recipe was chosen on seeds 1-20: no "
                             "counterexample found on 4, proven on 3.")
    early = [{"row": "r", "verdict": "proven", "seeds": [1, 2]}, {"row": "r", "verdict": "counterexample", "seeds": [8]}]
    assert "seeds from 21" not in study.recipe_summary("r", early)


def test_an_audited_run_keeps_its_verdict_and_its_weights(tmp_path):
    flags = ("--total_steps", "200", "--eval_every", "100", "--eval_samples", "200")
    record = study.train_and_audit("baseline", 1, flags)
    assert record["audit"]["verdict"].startswith(("counterexample ", "no counterexample ("))
    task = sweep.Task("rnn_tutorial.study:train_and_audit", "baseline", 1, flags, folder="audit")
    store = sweep.RecordStore(str(tmp_path))
    path = store.save(task, record)
    weights = torch.load(path.replace(".json", ".pt"), weights_only=True)
    model = T.build_model(record["flags"])
    model.load_state_dict(weights)  # the same model again: the audit can be repeated without training
    assert judge.audit(model, record["flags"], beam_sequences=100_000, max_length=20)["counterexample"] is not None
    loaded = store.load(task)
    assert loaded["audit"] == record["audit"] and "attachments" not in loaded
    (row,) = study.exact_rows([loaded])
    assert row["seeds"] == 1 and row["no_counterexample"] == 0 and row["proven"] == 0
    assert row["learned"] == int(loaded["converged"])
    table = study.exact_table([row])
    assert f"| baseline | 1 | {row['learned']} of 1 | " in table and "- baseline seed 1: " in table
    assert row["gradient_judged"] == 1 and study.gradient_cell(row) == f"{row['gradient_found']} of 1"
    assert row["convicted_judged"] == 1 and row["gradient_convicts"] == row["gradient_found"]
    assert f"on the 1 run it judged that have a counterexample, found one on {row['gradient_found']}" in table
    older = {**loaded, "audit": {k: v for k, v in loaded["audit"].items() if k != "gradient_search"}}
    assert study.gradient_cell(study.exact_rows([older])[0]) == "not run"  # judged before the gradient search
    assert study.gradient_cell(study.exact_rows([loaded, {**older, "seed": 2}])[0]).endswith(" of 1 judged")
    # a record judged by an older audit is judged again from its weights, without training; fresh ones are left
    stale = {**loaded, "audit": {**loaded["audit"], "version": 1, "verdict": "judged by an older audit"}}
    store.save(task, stale)
    study.reaudit_stale([task], store)
    again = store.load(task)
    assert again["audit"]["version"] == judge.VERSION and again["audit"]["verdict"] == record["audit"]["verdict"]
    assert again["eval_curve"] == record["eval_curve"]  # the training's record is kept as it was
    before = os.path.getmtime(path)
    study.reaudit_stale([task], store)
    assert os.path.getmtime(path) == before


def test_the_deep_try_judges_the_record_that_stands_for_a_restart_run_once(tmp_path, monkeypatch):
    import io

    from audit_fixtures import exact_adder

    model, store = exact_adder(base=3), sweep.RecordStore(str(tmp_path))
    plain = ("--total_steps", "1000", "--eval_every", "100", "--max_number", "2", "--embed_dim", "3",
             "--hidden_dim", "10")  # the adder's shape
    without = sweep.Task("rnn_tutorial.study:train_and_audit", "p", 1, plain, folder="audit")
    with_flag = sweep.Task("rnn_tutorial.study:train_and_audit", "r", 1, plain + ("--restart_by", "500"),
                           folder="audit")
    judged = judge.summary(judge.audit(model, sweep.task_config(without), beam_sequences=20_000, max_length=30,
                                       gradient_sequences=20_000))
    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    unproven = {**judged, "proof": {"proven": False, "reason": "boxes grew", "attempts": []}}
    path = store.save(without, {"run_name": "p", "seed": 1, "flags": sweep.task_config(without), "audit": unproven,
                                "eval_curve": [{"step": 300, "accuracy": 0.995}], "test_accuracy": 1.0,
                                "attachments": {".pt": weights.getvalue()}})
    study.reaudit_stale([with_flag], store)  # without --deep: the record is not stale
    assert not store.load(without)["audit"]["proof"]["proven"]
    monkeypatch.setattr(proof, "DEEP_TRY", (1, 4, 1.0, 0.1))
    study.reaudit_stale([with_flag], store, deep=True)  # the restart run was found at 300: its record is `without`
    assert store.load(without)["audit"]["proof"]["proven"] and store.load(with_flag) is None
    before = os.path.getmtime(path)
    study.reaudit_stale([with_flag, without], store, deep=True)
    assert os.path.getmtime(path) == before  # tried once


def test_a_restart_run_found_before_its_step_is_the_recorded_run_without_the_flag(tmp_path):
    """study.same_run_without_restart: the record of a recipe without --restart_by N stands for the recipe with
    it when that run was found (an evaluation at 99%) by step N, which it then never reaches unfound; otherwise
    the run must be trained."""
    store = sweep.RecordStore(str(tmp_path))
    plain = ("--total_steps", "1000", "--eval_every", "100")
    with_flag = sweep.Task("rnn_tutorial.study:train_and_audit", "r", 1, plain + ("--restart_by", "500"),
                           folder="audit")
    without = sweep.Task("rnn_tutorial.study:train_and_audit", "p", 1, plain, folder="audit")
    assert study.same_run_without_restart(with_flag, store) is None  # nothing recorded
    assert study.same_run_without_restart(without, store) is None  # no flag: nothing stands for it

    def record(found_at):
        curve = [{"step": s, "accuracy": 0.995 if found_at and s >= found_at else 0.5} for s in range(100, 1001, 100)]
        return {"run_name": "p", "seed": 1, "flags": sweep.task_config(without), "eval_curve": curve}

    for found_at, stands in [(300, True), (500, True), (600, False), (None, False)]:
        store.save(without, record(found_at))
        same = study.same_run_without_restart(with_flag, store)
        assert (same is not None) == stands, found_at
        if stands:
            assert same["flags"]["restart_by"] == 500 and same["eval_curve"] == record(found_at)["eval_curve"]
            assert sweep.identity(same["flags"]) == sweep.identity(sweep.task_config(with_flag))
            assert same["same_run_as"] == os.path.relpath(store.path(without), str(tmp_path))


def test_the_new_code_is_compared_with_the_code_before_seed_by_seed(tmp_path):
    """study.against_before: paired by seed, how often the new run fits random sequences worse than the old one
    (a sign test) and how many end with a counterexample on each side (Fisher's exact test), all and fresh seeds."""
    assert study.sign_test(0, 10) == pytest.approx(2 / 1024) and study.sign_test(5, 10) == 1.0
    assert study.fisher_one_sided(2, 2, 0, 2) == pytest.approx(1 / 6)  # both events in the first pair of four
    new, old = sweep.RecordStore(str(tmp_path / "new")), sweep.RecordStore(str(tmp_path / "old"))
    tasks = {t.seed: t for t in study.exact_tasks(list(range(1, 25)), [], new, ["reliable"])}

    def record(task, loss, wrong):
        curve = [{"step": s, "loss": loss, "accuracy": 1.0} for s in (15_000, 16_000, 20_000)]
        return {"seed": task.seed, "flags": sweep.task_config(task), "eval_curve": curve,
                "audit": {"counterexample": {"sequence": [1]} if wrong else None}}

    for seed, task in tasks.items():
        new.save(task, record(task, 0.002 if seed % 2 else 0.001, wrong=seed in (2, 22, 23)))
        old.save(task, record(task, 0.0015, wrong=False))
    sentence = study.against_before("reliable", new, old)
    assert "on the 24 seeds both codes ran, the new code's runs fit random sequences as the old ones did" in sentence
    assert "higher than the old run's on 12 of 24 seeds (two-sided sign test, p = 1)" in sentence
    assert "found on 3 of the new runs against 0 of the old (Fisher's exact test, one-sided, p = 0.12)" in sentence
    assert sentence.endswith("on the 4 seeds from 21 on, on 2 of the new runs against 0 of the old (Fisher's exact "
                             "test, one-sided, p = 0.21).")
    for seed, task in tasks.items():  # every new run fits worse: not as the old ones did
        new.save(task, record(task, 0.01, wrong=False))
    assert "fit random sequences not as the old ones did" in study.against_before("reliable", new, old)
