"""Qt-free numerical core: diffusion, networks, score machines, data, rendering."""
