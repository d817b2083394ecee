"""The machine table, the provenance-mode table and the export-format table are the one
place each rule lives: the core, the command line and the window all follow them."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from ccdm_gui.cli import build_parser  # noqa: E402
from ccdm_gui.core import machine_registry as machines  # noqa: E402
from ccdm_gui.core import provenance  # noqa: E402
from ccdm_gui.core.spec import RunSpec  # noqa: E402


def test_pairs_follow_the_table():
    for m in machines.TABLE:
        for b in machines.BOUNDARIES:
            if b in m.boundaries:
                machines.check_pair(m.name, b)
                RunSpec(model="m", dataset="d", machine=m.name, boundary=b)
                assert machines.fit_boundary(m.name, b) == b
            else:
                with pytest.raises(ValueError, match=f"{m.name} is defined for"):
                    machines.check_pair(m.name, b)
                with pytest.raises(ValueError, match=f"use {machines.default_machine(b)}"):
                    RunSpec(model="m", dataset="d", machine=m.name, boundary=b)
                assert machines.fit_boundary(m.name, b) == m.boundaries[0]
    # The paper's pairing: bbELS models zero-padded CNNs, ELS circular ones.
    assert machines.default_machine("zeros") == "bbels"
    assert machines.default_machine("circular") == "els"
    assert machines.machine("bbels").boundaries == ("zeros",)
    assert machines.CALIBRATABLE == ("bbels", "els", "ls")
    with pytest.raises(ValueError, match="unknown machine 'nope'"):
        machines.check_pair("nope", "zeros")
    with pytest.raises(ValueError, match="unknown boundary"):
        machines.check_pair("els", "reflect")


def test_the_window_and_the_command_line_offer_the_same_machines(qtbot):
    from ccdm_gui.app.controls import ControlPanel

    panel = ControlPanel(["cpu"])
    qtbot.addWidget(panel)
    items = [panel.machine.itemData(i) for i in range(panel.machine.count())]
    labels = [panel.machine.itemText(i) for i in range(panel.machine.count())]
    assert items == list(machines.MACHINES)
    # Each label names the command-line name, so what the window shows can be typed.
    assert all(name.lower() in text.lower() for name, text in zip(items, labels, strict=True))
    modes = [panel.prov_mode.itemData(i) for i in range(panel.prov_mode.count())]
    assert modes == list(provenance.KEYS)

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for cmd in ("run", "gui", "export"):
        opt = next(a for a in sub[cmd]._actions if a.dest == "machine")
        assert tuple(opt.choices) == machines.MACHINES, cmd
        opt = next(a for a in sub[cmd]._actions if a.dest == "boundary")
        assert tuple(opt.choices) == machines.BOUNDARIES, cmd
    opt = next(a for a in sub["export"]._actions if a.dest == "provenance")
    assert tuple(opt.choices) == provenance.KEYS


def test_gui_command_refuses_a_pair_the_table_forbids(capsys):
    from ccdm_gui.cli import main

    assert main(["gui", "--machine", "bbels", "--boundary", "circular"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ccdm gui: error: --machine bbels: bbels is defined for the zeros")
    assert err.count("\n") == 1
