"""QApplication bootstrap: style, icon, the main window, and the --screenshot mode."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from .. import LAUNCHED_AT
from ..core.resources import resources_dir

ICON = Path("icons") / "ccdm-gui.png"


def icon_path() -> Path:
    return resources_dir() / ICON


def _dark_palette() -> QPalette:
    # The panels are dark so that grey images read well; the chrome follows them.
    p = QPalette()
    base, window, text = QColor(32, 33, 36), QColor(44, 45, 48), QColor(225, 225, 225)
    for role, c in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.ToolTipBase, QColor(60, 60, 64)),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.Highlight, QColor(66, 133, 214)),
        (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
        (QPalette.ColorRole.Link, QColor(110, 170, 255)),
        (QPalette.ColorRole.PlaceholderText, QColor(140, 140, 140)),
    ):
        p.setColor(role, c)
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    return p


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
        app.setStyle("Fusion")
        app.setPalette(_dark_palette())
    app.setApplicationName("ccdm-gui")
    app.setOrganizationName("ccdm-gui")
    if icon_path().exists():
        app.setWindowIcon(QIcon(str(icon_path())))
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    return app


def _install_excepthook(window) -> None:
    """An exception in a slot becomes a message in the window, not a traceback on a
    terminal the user may not even have."""

    def hook(exc_type, exc, tb) -> None:
        print(f"ccdm-gui: internal error: {exc_type.__name__}: {exc}", file=sys.stderr)
        try:
            window.show_error(f"Internal error ({exc_type.__name__}): {exc}")
        except Exception:
            pass

    sys.excepthook = hook


def run_gui(options: dict, screenshot: str | None = None, timeout_s: float = 900.0) -> int:
    from .main_window import MainWindow

    app = make_app()
    win = MainWindow(options)
    _install_excepthook(win)
    status = {"code": 0}
    if screenshot:

        def save(_comp) -> None:
            # Let the layout settle and the last frame paint before grabbing.
            def grab() -> None:
                win.grab().save(str(screenshot))
                first = (win.first_frame_at or time.perf_counter()) - LAUNCHED_AT
                print(
                    f"ccdm-gui: saved {screenshot}; after launch: first frame {first:.1f} s, "
                    f"complete comparison {time.perf_counter() - LAUNCHED_AT:.1f} s"
                )
                win.close()

            QTimer.singleShot(300, grab)

        def fail(msg: str) -> None:
            print(f"ccdm-gui: {msg}", file=sys.stderr)
            status["code"] = 1
            win.close()

        def too_slow() -> None:
            print(f"ccdm-gui: no complete comparison within {timeout_s:.0f} s", file=sys.stderr)
            status["code"] = 1
            win.close()

        win.comparison_ready.connect(save)
        win.run_failed.connect(fail)
        # A timer that dies with this call: a bare singleShot would outlive it and,
        # where the application lives on (the tests), fire long after the window closed.
        deadline = QTimer(win)
        deadline.setSingleShot(True)
        deadline.timeout.connect(too_slow)
        deadline.start(int(timeout_s * 1000))
    win.show()
    app.exec()
    if screenshot:
        deadline.stop()
    return status["code"]
