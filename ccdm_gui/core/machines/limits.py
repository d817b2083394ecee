"""The numbers every route's softmax shares, so that all of them compute the same thing.

Each route keeps, per query, a shift m (a logit seen so far), sums of exp(l - m) and the
best logit over m. The torch route works in natural logs, the compiled routes in base 2
(their exp is 2^x); the same numbers serve both bases.
"""

from __future__ import annotations

import math

import numpy as np

LOG2E = 1.0 / math.log(2.0)
# Logits may exceed the shift by this much before m moves: exp(20) * 6e7 candidates (and
# 2^20 times as many) stays far inside float32 sums.
REBASE = 20.0
# exp of a logit more than ~87 below the shift is a float32 denormal (2^x one below
# -126), and denormals run through exp, the products and the sums tens of times slower
# (measured 60x for exp at late noise times, where logits spread over thousands).
# Logits are clamped here first: exp(-80) and 2^-80 are still normal floats, and the
# weight either adds is below 1e-24 per candidate against a total of at least 1 (the
# shift never exceeds the largest logit seen).
FLOOR = -80.0
# Base 2: a row of a tile (or a key of a block) whose largest logit lies this far below
# the shift is skipped. The shift is a logit seen, so the sum of weights is at least 1,
# and even 2^26 (6.7e7, every patch of 60,000 MNIST images) such candidates add under
# 2^-34 to it, far below float32 resolution. Late in sampling most tiles are such (the
# posterior is peaked).
NEGLIGIBLE = -60.0

# The same as the compiled passes take them.
FLOOR32 = np.float32(FLOOR)
REBASE32 = np.float32(REBASE)
NEGLIGIBLE32 = np.float32(NEGLIGIBLE)

# Values per candidate the compiled kernels average (foldc.c: MAXC): a grey or colour
# centre pixel, with room to spare.
MAX_VALUES = 8
