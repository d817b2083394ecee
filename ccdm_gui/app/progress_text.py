"""What the progress bar says while the machine computes: its steps, and once a step has
taken a while, roughly how long the rest will take (on the whole training set a
comparison runs for minutes, and the user decides whether to wait or cancel)."""

from __future__ import annotations

# Below this, a countdown would flicker past faster than it could be read.
SHOW_FROM_S = 10.0


def remaining(seconds: float, done: int, total: int) -> str:
    """'~40 s left' / '~9 min left' after ``done`` of ``total`` steps took ``seconds``;
    '' before the first step or when little is left."""
    if done <= 0 or done >= total:
        return ""
    left = seconds / done * (total - done)
    if left < SHOW_FROM_S:
        return ""
    if left < 90:
        return f"~{round(left / 10) * 10:.0f} s left"
    return f"~{round(left / 60):.0f} min left"


def machine_format(name: str, done: int, total: int, seconds: float) -> str:
    """The bar's text after ``done`` machine steps that took ``seconds`` in all."""
    text = f"{name} {done}/{total}"
    left = remaining(seconds, done, total)
    return f"{text} · {left}" if left else text
