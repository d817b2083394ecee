"""ccdm-gui: see where a convolutional diffusion model's samples come from."""

__version__ = "0.1.0"
