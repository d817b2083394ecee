"""The paper's headline numbers (docs/design.md, The paper's metric): per seed, the
correlation between the CNN's final sample and each machine's final sample from the same
initial noise (and, for class-conditional models, the same label, drawn at random from the
seed as the paper draws one per seed; the machine then sees the first ``subset`` images of
that class).

Seeds are batched through both the CNN and the machines; the per-seed noise is drawn
exactly as a single run draws it, so a seed's number here matches ``ccdm run --seed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .denoisers import MachineDenoiser
from .machine_registry import check_pair
from .metrics import correlation_batch, summary
from .sampler import initial_noise, sample
from .spec import RunSpec


def evaluate(
    model_path: str,
    dataset_path: str,
    machines: Sequence[str],
    seeds: Sequence[int],
    *,
    cnn_steps: int = 20,
    steps: int = 20,
    subset: int = 1000,
    boundary: str | None = None,
    patch_size: int | None = None,
    baseline: str | None = None,
    device: str = "cpu",
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Returns a JSON-ready dict: settings, per-seed correlations per machine, summaries,
    and (with ``baseline``) the fraction of seeds where each machine beats the baseline."""
    from .pipeline import load_model, load_training_images, patch_schedule

    model = load_model(model_path, device)
    info = model.info
    seeds = [int(s) for s in seeds]
    labels = [info.label_for_seed(s) for s in seeds]
    pad = boundary or info.padding
    machines = list(dict.fromkeys(machines))
    todo = machines + ([baseline] if baseline and baseline not in machines else [])
    shape = (1, info.channels, info.image_size, info.image_size)
    x_init = torch.cat([initial_noise(shape, s, device) for s in seeds])
    lab_t = None
    if info.num_classes > 0:
        lab_t = torch.tensor(labels, dtype=torch.long, device=device)

    def cnn(x: torch.Tensor, t: float):
        return model.predictor(x, t, lab_t)

    def tick(stage: str):
        return None if on_progress is None else (lambda i, _s: on_progress(stage, i, n_steps))

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    n_steps = cnn_steps
    cnn_final = sample(cnn, x_init, cnn_steps, schedule=model.schedule, on_step=tick("cnn")).final
    timings["cnn"] = time.perf_counter() - t0

    groups: dict[int | None, list[int]] = {}
    for k, lab in enumerate(labels):
        groups.setdefault(lab, []).append(k)

    per_machine: dict[str, list[float]] = {}
    schedules: dict[str, list[int]] = {}
    for m in todo:
        check_pair(m, pad)
        b = pad
        n_steps = steps
        t0 = time.perf_counter()
        final = torch.empty_like(x_init)
        for lab, ks in groups.items():
            spec = RunSpec(
                model=model_path,
                dataset=dataset_path,
                subset=subset,
                label=lab,
                steps=steps,
                machine=m,
                boundary=b,
                patch_size=patch_size,
                device=device,
            )
            ps = patch_schedule(spec, info, model.schedule)
            schedules[m] = [int(p) for p in ps]
            times = model.schedule.times(steps)
            by_t = {t: int(p) for t, p in zip(times, ps, strict=True)}
            train = load_training_images(spec, info).images
            den = MachineDenoiser(train, m, lambda t, by_t=by_t: by_t[t], b, model.schedule)
            idx = torch.tensor(ks, device=x_init.device)
            final[idx] = sample(
                den, x_init[idx], steps, schedule=model.schedule, on_step=tick(m)
            ).final
        timings[m] = time.perf_counter() - t0
        per_machine[m] = [float(v) for v in correlation_batch(cnn_final, final)]

    out = {
        "model": model_path,
        "dataset": dataset_path,
        "subset": subset,
        # With a label the machine takes the first ``subset`` images of that class.
        "subset_of": "class" if info.num_classes > 0 else "dataset",
        "seeds": seeds,
        "labels": labels,
        "cnn_steps": cnn_steps,
        "steps": steps,
        "boundary": pad,
        "patch_size": patch_size if patch_size is not None else "calibrated",
        "calibrated": sorted((info.calibrated_p or {}).keys()),
        "schedules": schedules,
        "correlation": {m: per_machine[m] for m in todo},
        "summary": {m: summary(per_machine[m]) for m in todo},
        "seconds": timings,
    }
    if baseline:
        out["baseline"] = baseline
        out["beats_baseline"] = _beats(per_machine, baseline)
    return out


def _beats(per_machine: dict[str, list[float]], baseline: str) -> dict[str, float]:
    """The fraction of seeds on which each machine beats the baseline machine."""
    base = np.asarray(per_machine[baseline])
    return {
        m: float(np.mean(np.asarray(v) > base)) for m, v in per_machine.items() if m != baseline
    }


# What evaluations must share to be one evaluation over more seeds.
_SAME = (
    "model",
    "dataset",
    "subset",
    "subset_of",
    "cnn_steps",
    "steps",
    "boundary",
    "patch_size",
    "schedules",
    "baseline",
)


def combine(parts: Sequence[dict]) -> dict:
    """Evaluations of one model with the same settings over disjoint seeds (runs with
    ``--first-seed`` 0, 10, 20, ...) as one: per-seed values joined in the order given,
    summaries and the baseline comparison recomputed, seconds added up."""
    if not parts:
        raise ValueError("nothing to combine")
    first = parts[0]
    for k, p in enumerate(parts[1:], start=2):
        for key in (*_SAME, "correlation"):
            a, b = first.get(key), p.get(key)
            if key == "correlation":
                a, b = sorted(a or {}), sorted(b or {})
            if a != b:
                raise ValueError(
                    f"evaluation {k} differs from the first in {key!r}: {b!r} vs {a!r}"
                )
    seeds = [s for p in parts for s in p["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise ValueError("the evaluations share seeds; combine disjoint ones")
    per_machine = {m: [v for p in parts for v in p["correlation"][m]] for m in first["correlation"]}
    out = dict(first)
    out.update(
        seeds=seeds,
        labels=[lab for p in parts for lab in p["labels"]],
        correlation=per_machine,
        summary={m: summary(v) for m, v in per_machine.items()},
        seconds={m: sum(p["seconds"].get(m, 0.0) for p in parts) for m in first["seconds"]},
        combined_from=len(parts),
    )
    if first.get("baseline"):
        out["beats_baseline"] = _beats(per_machine, first["baseline"])
    return out
