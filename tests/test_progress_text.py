"""The progress bar's countdown while the machine computes."""

from __future__ import annotations

from ccdm_gui.app.progress_text import machine_format, remaining


def test_remaining_time_from_the_steps_so_far():
    # 3 of 20 steps in 105 s: 35 s a step, 17 steps left, about 10 minutes
    assert remaining(105.0, 3, 20) == "~10 min left"
    assert remaining(30.0, 10, 20) == "~30 s left"
    assert remaining(44.0, 1, 2) == "~40 s left"
    assert remaining(89.0, 1, 2) == "~90 s left"


def test_no_countdown_before_a_step_or_when_little_is_left():
    assert remaining(0.0, 0, 20) == ""
    assert remaining(5.0, 10, 20) == ""  # 5 s left: gone before it is read
    assert remaining(600.0, 20, 20) == ""


def test_bar_text():
    assert machine_format("bbELS", 3, 20, 105.0) == "bbELS 3/20 · ~10 min left"
    assert machine_format("bbELS", 19, 20, 9.5) == "bbELS 19/20"
