"""Seconds for one default comparison on this machine: the shipped MNIST ResNet (zeros)
beside bbELS, 20 DDIM steps, calibrated P(t), N = 2,000 training images, seed 0.

    .venv/bin/python bench/end_to_end.py [--subset 2000] [--steps 20] [--device cpu]

Prints the CNN's and the machine's seconds separately and their ratio; dataset decoding
is timed apart (the app pays it once per dataset, not per run).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

# Runnable from a source checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ccdm_gui.core.devices import resolve_device
from ccdm_gui.core.pipeline import (
    assemble_comparison,
    load_model,
    load_training_images,
    patch_schedule,
    run_cnn,
    run_machine,
    schedule_for,
)
from ccdm_gui.core.resources import default_dataset_path, default_model_path
from ccdm_gui.core.spec import RunSpec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(default_model_path()))
    p.add_argument("--dataset", default=str(default_dataset_path()))
    p.add_argument("--subset", type=int, default=2000)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--machine", default="bbels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = RunSpec(
        model=args.model,
        dataset=args.dataset,
        subset=args.subset,
        seed=args.seed,
        steps=args.steps,
        machine=args.machine,
        device=resolve_device(args.device),
    )
    t0 = time.perf_counter()
    model = load_model(spec.model, spec.device)
    info = model.info
    load_training_images(spec, info)
    t_load = time.perf_counter() - t0
    _, own = schedule_for(info, spec.machine)
    print(
        f"device {spec.device}, torch threads {torch.get_num_threads()}, N = {spec.subset}, "
        f"{spec.steps} steps, machine {spec.machine}"
    )
    print(
        f"P(t) ({'calibrated' if own else 'default schedule'}): "
        f"{' '.join(map(str, patch_schedule(spec, info, model.schedule)))}"
    )
    print(f"model + dataset load: {t_load:.2f} s")
    t0, c0 = time.perf_counter(), time.process_time()
    cnn = run_cnn(spec)
    t_cnn, c_cnn = time.perf_counter() - t0, time.process_time() - c0
    print(f"CNN:     {t_cnn:8.2f} s", flush=True)
    ps = patch_schedule(spec, info, model.schedule)
    t0, c0 = time.perf_counter(), time.process_time()
    last = [t0]

    def per_step(i: int, total: int, _partial) -> None:
        now = time.perf_counter()
        print(
            f"  machine step {i + 1:2d}/{total}  P = {ps[i]:2d}  {now - last[0]:6.2f} s", flush=True
        )
        last[0] = now

    machine = run_machine(spec, on_step=per_step)
    t_machine, c_machine = time.perf_counter() - t0, time.process_time() - c0
    comp = assemble_comparison(spec, cnn, machine)
    print(f"CNN:     {t_cnn:8.2f} s  ({t_cnn / spec.steps:.3f} s/step)")
    print(f"machine: {t_machine:8.2f} s  ({t_machine / spec.steps:.3f} s/step)")
    print(f"machine / CNN: {t_machine / t_cnn:.1f}x")
    # CPU seconds (all threads): the fairer number when other work shares the cores
    print(f"CPU seconds: CNN {c_cnn:.2f}, machine {c_machine:.2f}, ratio {c_machine / c_cnn:.1f}x")
    print(f"final correlation: {comp.final_correlation:.4f}")


if __name__ == "__main__":
    main()
