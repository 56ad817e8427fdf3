"""bench/floor.py: a rate is turned into a CPU budget a message the right way, and the
steps it times are the ones a message meets, and aging's messages go through all of them
(the in-memory apply answers each AA)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import aging
import floor
import population


def test_a_rate_is_a_budget_per_message() -> None:
    b = floor.budget(peer_rate=2_000.0, ratio=1.2, cores=2, senders_ms=0.05)
    assert b.one_interpreter == pytest.approx(1000 / 2_400)
    # Two cores give 2,000 ms of CPU a second; the senders take 2,400 x 0.05 of it.
    assert b.all_cores == pytest.approx((2_000 - 120) / 2_400)


def test_senders_that_take_every_core_leave_no_budget() -> None:
    assert floor.budget(peer_rate=1_000.0, ratio=5.0, cores=1, senders_ms=1.0).all_cores == 0


def test_the_verdict_says_by_how_much_a_cost_misses() -> None:
    assert floor.verdict(0.3, 0.4) == "fits"
    assert floor.verdict(0.4, 0.4) == "fits"
    assert floor.verdict(0.6, 0.4) == "does not fit (1.50x the budget)"


def test_every_step_is_timed_on_aging_messages() -> None:
    pop = population.skewed(300, seed=5)
    traffic = aging.Traffic(aging.Store("skewed", 0, Path("unused"), pop))
    messages = traffic.messages(80, floor.SENDERS)
    steps = floor.pure_steps(messages)
    assert tuple(steps.seconds) == floor.STEPS
    assert all(seconds > 0 for seconds in steps.seconds.values())
    # Every message applied in memory as the engine applies it: none was cut short.
    assert steps.answers == {"AA": len(messages)}
