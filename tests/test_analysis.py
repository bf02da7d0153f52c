"""The multi-run analysis scripts' runners, on tiny runs in this process (the sweeps call the same functions)."""

import os

import pytest
import torch


import train_cls_rnn as T
from rnn_tutorial import article, article_check, residues, scoring

TINY = ("--total_steps", "200", "--eval_samples", "200")


class KnowsOnlyTheSumMod5(torch.nn.Module):
    """Answers (sum + 5) mod 10: right mod 5 every time, wrong about the parity every time."""

    def forward(self, inputs, lengths, lengths_sorted=True):
        mask = torch.arange(inputs.shape[1]) < lengths[:, None]
        answer = (inputs.masked_fill(~mask, 0).sum(dim=1) + 5) % 10
        return torch.nn.functional.one_hot(answer, 10).float()


def test_residue_accuracies_separate_the_two_halves_of_the_answer():
    test_set = scoring.test_set(2, 5, 500, 9)
    scores = T.evaluate(KnowsOnlyTheSumMod5(), test_set, torch.device("cpu"), divisors=T.proper_divisors(10))
    assert (scores["accuracy"], scores["accuracy_mod2"], scores["accuracy_mod5"]) == (0.0, 0.0, 1.0)


def test_residues_runner_trains_and_scores_each_divisor():
    record = residues.score_residues("baseline", 1, TINY)
    assert record["flags"]["total_steps"] == 200 and record["seed"] == 1
    assert set(record["residues"]) == {"10", "5", "2"}
    assert all(0 <= a <= 1 for a in record["residues"].values())
    assert record["residues"]["2"] >= record["residues"]["10"] <= record["residues"]["5"]


def test_article_check_runner_scores_the_articles_own_script():
    if not os.path.isfile(article.DEFAULT_ARTICLE):
        pytest.skip("the article is not beside this checkout")
    record = article_check.run_article_script("baseline", 1, ("--total_steps", "200"), article.training_code())
    assert record["steps"] == 200 and record["flags"]["seed"] == 1
    assert 0 <= record["test_accuracy"] <= 1 and set(record["accuracy_longer"]) == {"6-10", "11-20", "21-50"}
    again = article_check.run_article_script("baseline", 1, ("--total_steps", "200"), article.training_code())
    assert again["test_accuracy"] == record["test_accuracy"]  # the global seeds make it repeatable
