"""`strvos train` killed with SIGKILL at a random point and resumed gives the uninterrupted run's log (every loss
bit for bit) and weights (tools/reliability/crash.py; more kills, and `strvos eval`, in the slow suite and in
tools/soak.py's figures)."""
from __future__ import annotations

import pytest
from reliability import crash


def test_train_killed_once_and_resumed_equals_an_uninterrupted_run(tmp_path):
    outcome = crash.train(tmp_path, kills=1, seed=3, steps=8)
    assert outcome.figures["kills"] == 1
    assert outcome.held, outcome.failures


@pytest.mark.slow
def test_train_killed_repeatedly_equals_an_uninterrupted_run(tmp_path):
    outcome = crash.train(tmp_path, kills=4, seed=11, steps=24)
    assert outcome.figures["kills"] >= 3
    assert outcome.held, outcome.failures


@pytest.mark.slow
def test_eval_killed_repeatedly_gives_the_same_records_and_scores(tmp_path):
    outcome = crash.evaluate(tmp_path, kills=2, seed=5, videos=1)
    assert outcome.figures["kills"] >= 1
    assert outcome.held, outcome.failures
