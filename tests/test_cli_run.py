"""``ccdm run``, ``ccdm evaluate`` and ``ccdm calibrate`` end to end through cli.main."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_pipeline import SIZE, make_dataset, make_model

from ccdm_gui.cli import main
from ccdm_gui.core.checkpoint import read_info
from ccdm_gui.core.datasets import load_dataset
from ccdm_gui.core.pipeline import load_comparison, run_comparison
from ccdm_gui.core.spec import RunSpec


@pytest.fixture
def files(tmp_path):
    return make_model(tmp_path / "m.safetensors"), make_dataset(tmp_path / "data")


def run_argv(model, data, *options: str) -> list[str]:
    return ["run", "--model", str(model), "--dataset", str(data), *options]


def test_ccdm_run_writes_trajectory_and_metrics(files, tmp_path, capsys):
    model, data = files
    out = tmp_path / "run1"
    argv = run_argv(
        model,
        data,
        "--seed",
        "5",
        "--subset",
        "20",
        "--steps",
        "4",
        "--patch-size",
        "5",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert main(argv) == 0
    assert "final correlation" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "trajectory.npz"]
    comp = load_comparison(out / "trajectory.npz")
    assert comp.spec == RunSpec(
        model=str(model),
        dataset=str(data),
        subset=20,
        seed=5,
        steps=4,
        machine="bbels",
        boundary="zeros",
        patch_size=5,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["patch_size"] == [5, 5, 5, 5] and metrics["patch_schedule_source"] == "fixed"
    np.testing.assert_allclose(metrics["t"], [1.0, 0.75, 0.5, 0.25])
    np.testing.assert_allclose(metrics["correlation"], comp.correlation)
    assert metrics["final_correlation"] == pytest.approx(comp.final_correlation)
    assert set(metrics["timings"]) == {"cnn_seconds", "machine_seconds"}
    # the saved run is exactly what the library computes for the same spec
    again = run_comparison(comp.spec)
    np.testing.assert_array_equal(again.machine.x0, comp.machine.x0)
    np.testing.assert_array_equal(again.cnn.final, comp.cnn.final)


def test_ccdm_run_defaults_follow_the_model(tmp_path):
    model = make_model(tmp_path / "c.safetensors", padding="circular")
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "run2"
    argv = run_argv(
        model, data, "--subset", "12", "--steps", "3", "--device", "cpu", "--out", str(out)
    )
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # circular model -> circular ELS; no calibration -> the documented default schedule
    assert metrics["spec"]["machine"] == "els" and metrics["spec"]["boundary"] == "circular"
    assert metrics["patch_schedule_source"] == "default"
    assert metrics["patch_size"] == [15, 11, 7]  # t = 1, 2/3, 1/3 -> nearest 1.0, 0.65, 0.35


def test_ccdm_run_subset_all_takes_every_training_image(files, tmp_path):
    model, data = files
    whole = len(load_dataset(str(data)).images)
    outs = {}
    for subset in ("all", str(whole), str(whole - 3)):
        outs[subset] = tmp_path / f"run_{subset}"
        argv = run_argv(model, data, "--subset", subset, "--steps", "2", "--patch-size", "3")
        assert main([*argv, "--device", "cpu", "--out", str(outs[subset])]) == 0
    every = load_comparison(outs["all"] / "trajectory.npz")
    assert every.spec.subset is None
    np.testing.assert_array_equal(every.machine.train_indices, np.arange(whole))
    # the same machine as naming the whole set's size, not as a smaller subset
    named = load_comparison(outs[str(whole)] / "trajectory.npz").machine
    fewer = load_comparison(outs[str(whole - 3)] / "trajectory.npz").machine
    np.testing.assert_array_equal(every.machine.x0, named.x0)
    assert not np.array_equal(every.machine.x0, fewer.x0)


def test_ccdm_run_rejects_an_even_patch_size(files, tmp_path):
    model, data = files
    with pytest.raises(SystemExit):
        main(run_argv(model, data, "--patch-size", "4", "--out", str(tmp_path / "x")))


def test_ccdm_evaluate_and_calibrate(files, tmp_path, capsys):
    model, data = files
    common = ["--model", str(model), "--dataset", str(data), "--subset", "16", "--device", "cpu"]
    assert (
        main(
            [
                "calibrate",
                *common,
                "--seeds",
                "2",
                "--machines",
                "bbels",
                "--p-max",
                "5",
                "--steps",
                "20",
                "--write",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "median cosine similarity" in text and "wrote calibrated_p[bbels]" in text
    sched = read_info(model).calibrated_p["bbels"]
    assert len(sched) == 20 and set(sched) <= {3, 5}

    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "evaluate",
                *common,
                "--machine",
                "bbels,ls",
                "--seeds",
                "3",
                "--steps",
                "4",
                "--cnn-steps",
                "4",
                "--baseline",
                "ideal",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert set(res["correlation"]) == {"bbels", "ls", "ideal"}
    assert all(len(v) == 3 for v in res["correlation"].values())
    assert set(res["beats_baseline"]) == {"bbels", "ls"}
    assert res["patch_size"] == "calibrated"
    # the calibrated schedule just written is what evaluation used
    assert res["schedules"]["bbels"] == [sched[k] for k in (19, 14, 9, 4)]
    # each seed's number matches a single run with that seed
    single = run_comparison(
        RunSpec(model=str(model), dataset=str(data), subset=16, seed=2, steps=4, machine="ls")
    )
    assert res["correlation"]["ls"][2] == pytest.approx(single.final_correlation, abs=1e-5)
    assert "beats ideal" in capsys.readouterr().out
    assert SIZE == read_info(model).image_size


def test_ccdm_evaluate_draws_a_class_per_seed(tmp_path):
    """A conditional model: each seed gets the label drawn from it, recorded in the JSON,
    and its number is the single run of that seed and class (machine on that class's
    first N images)."""
    model = make_model(tmp_path / "c.safetensors", num_classes=4)
    data = make_dataset(tmp_path / "data", classes=4)
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--model", str(model), "--dataset", str(data), "--subset", "5"]
    argv += ["--machine", "ls", "--seeds", "6", "--steps", "3", "--cnn-steps", "3"]
    assert main([*argv, "--patch-size", "3", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    info = read_info(model)
    assert res["labels"] == [info.label_for_seed(s) for s in range(6)]
    assert len(set(res["labels"])) > 1
    for seed in (0, 5):
        spec = RunSpec(
            model=str(model),
            dataset=str(data),
            subset=5,
            seed=seed,
            label=res["labels"][seed],
            steps=3,
            machine="ls",
            patch_size=3,
        )
        single = run_comparison(spec)
        assert set(single.machine.train_indices % 4) == {res["labels"][seed]}
        assert len(single.machine.train_indices) == 5
        assert res["correlation"]["ls"][seed] == pytest.approx(single.final_correlation, abs=1e-4)
    # the same six seeds in two runs, combined, are the six-seed evaluation
    halves = []
    for first in (0, 3):
        half = tmp_path / f"half{first}.json"
        chunk = ["--seeds", "3", "--first-seed", str(first), "--baseline", "ideal"]
        assert main([*argv, *chunk, "--patch-size", "3", "--json", str(half)]) == 0
        halves.append(str(half))
    both = tmp_path / "both.json"
    assert main(["evaluate", "--combine", *halves, "--json", str(both)]) == 0
    joined = json.loads(both.read_text())
    assert joined["seeds"] == list(range(6)) and joined["labels"] == res["labels"]
    np.testing.assert_allclose(joined["correlation"]["ls"], res["correlation"]["ls"], atol=1e-4)
    assert joined["summary"]["ls"]["n"] == 6 and joined["combined_from"] == 2
    assert joined["summary"]["ls"]["median"] == pytest.approx(
        float(np.median(joined["correlation"]["ls"]))
    )
    ls, ideal = (np.asarray(joined["correlation"][m]) for m in ("ls", "ideal"))
    assert joined["beats_baseline"] == {"ls": pytest.approx(float(np.mean(ls > ideal)))}
    # overlapping seeds, or other settings, are refused
    assert main(["evaluate", "--combine", halves[0], halves[0]]) == 1
    assert main(["evaluate", "--combine", halves[0], str(out)]) == 1
