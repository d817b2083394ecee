"""ccdm-gui: see where a convolutional diffusion model's samples come from."""

import time as _time

__version__ = "0.1.0"
# The first thing any entry point imports: "launch" for the window's timing figures.
LAUNCHED_AT = _time.perf_counter()
