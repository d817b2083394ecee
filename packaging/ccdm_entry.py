"""Entry point of the frozen bundle: one script, two executables.

The spec builds ``ccdm`` (console) and ``ccdm-gui`` (windowed) from this one
script, so PyInstaller analyses torch and Qt once instead of twice (the analysis
is most of the build time). The executable's own name picks the behaviour;
sys.executable is used rather than argv[0] because the bootloader resolves the
/usr/bin symlinks of the .deb to the real file, whose name is what we built.
"""

import multiprocessing
import os
import sys


def _role() -> str:
    name = os.path.basename(sys.executable or sys.argv[0]).lower()
    if name.endswith(".exe"):
        name = name[:-4]
    return "gui" if name == "ccdm-gui" else "cli"


if __name__ == "__main__":
    # A frozen program that ever starts a child with the spawn method (macOS and
    # Windows default) must let that child run the worker instead of main().
    multiprocessing.freeze_support()
    from ccdm_gui.cli import gui_main, main

    sys.exit(gui_main() if _role() == "gui" else main())
