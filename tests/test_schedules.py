"""Learning-rate schedules and the EMA decay: closed-form values; optimizers that follow them."""
import math

import numpy as onp
import pytest

from minivq.optim import adam, sgd
from minivq.schedules import constant, ema_decay_at, warmup_cosine


def test_warmup_cosine_closed_form_values():
    # lr 1.0, T = 10, W = 2: warm-up 0.5, 1.0; then cos over 8 steps; lr_min = 0.1
    schedule = warmup_cosine(1.0, total_steps=10, warmup_steps=2, final_fraction=0.1)
    assert schedule(0) == pytest.approx(0.5)
    assert schedule(1) == pytest.approx(1.0)
    assert schedule(2) == pytest.approx(1.0)                         # cos(0): the peak
    assert schedule(6) == pytest.approx(0.1 + 0.9 * 0.5)             # half way: cos(pi/2) = 0
    assert schedule(4) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert schedule(10) == pytest.approx(0.1)                        # cos(pi): the floor
    assert schedule(50) == pytest.approx(0.1)                        # and it stays there


def test_warmup_cosine_against_a_loop_of_the_formula():
    lr, total, warmup = 3e-3, 37, 5
    schedule = warmup_cosine(lr, total, warmup)
    for t in range(total + 3):
        if t < warmup:
            expected = lr * (t + 1) / warmup
        else:
            frac = min(t - warmup, total - warmup) / (total - warmup)
            expected = lr * 0.5 * (1 + math.cos(math.pi * frac))
        assert schedule(t) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_no_warmup_starts_at_the_peak_and_all_warmup_stays_there():
    assert warmup_cosine(2.0, 4)(0) == 2.0
    all_warmup = warmup_cosine(2.0, 4, warmup_steps=4)
    assert [all_warmup(t) for t in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]


def test_constant_and_settings_record():
    assert constant(0.3)(0) == constant(0.3)(999) == 0.3
    assert warmup_cosine(1e-3, 100, 10).settings == {"kind": "warmup_cosine", "lr": 1e-3,
                                                     "total_steps": 100, "warmup_steps": 10,
                                                     "final_fraction": 0.0}


@pytest.mark.parametrize("args, message", [((0.0, 10), "lr must be"), ((1e-3, 0), "total_steps"),
                                           ((1e-3, 10, 11), "warmup_steps"),
                                           ((1e-3, 10, 0, 2.0), "final_fraction")])
def test_bad_schedule_arguments_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        warmup_cosine(*args)


def test_ema_decay_ramps_then_caps():
    assert ema_decay_at(0.999, 0) == pytest.approx(1 / 10)
    assert ema_decay_at(0.999, 8) == pytest.approx(9 / 18)
    assert ema_decay_at(0.9, 80) == pytest.approx(81 / 90) and ema_decay_at(0.9, 81) == 0.9


def test_sgd_follows_the_schedule_step_by_step():
    # p <- p - lr(t) g with g = 1 on the loss p: p_t = -sum_{s < t} lr(s)
    schedule = warmup_cosine(0.5, 6, 2)
    init, update = sgd(schedule)
    params, state = {"p": onp.zeros(())}, init({"p": onp.zeros(())})
    for t in range(8):
        params, state = update(params, {"p": onp.ones(())}, state)
        assert params["p"] == pytest.approx(-sum(schedule(s) for s in range(t + 1)))


def test_adam_with_a_schedule_scales_each_step_by_its_lr():
    # With a constant gradient g, m_hat = g and v_hat = g^2 at every step, so each step is
    # -lr(t) * sign(g) (eps = 0): the same path as Adam with a constant lr, step-scaled.
    schedule = warmup_cosine(0.1, 5, 1)
    init, update = adam(schedule, eps=0.0)
    params = {"p": onp.zeros(2)}
    state = init(params)
    g = {"p": onp.array([3.0, -0.5])}
    for t in range(6):
        before = params["p"].copy()
        params, state = update(params, g, state)
        assert onp.allclose(params["p"] - before, -schedule(t) * onp.sign(g["p"]))
