"""Train a CNN denoiser with the paper's objective (eps-MSE, t uniform on the 1000-grid)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from . import interrupt
from .atomic import atomic_path
from .checkpoint import ModelInfo, load_checkpoint, network_params, save_checkpoint
from .datasets import Dataset
from .networks import build_network
from .schedule import abar_tensor
from .validate import ArgumentError

LR_DECAY = 0.999965  # per batch, as in the paper


@dataclass
class TrainConfig:
    arch: str = "resnet"
    width: int = 64
    blocks: int = 6
    padding: str = "zeros"
    conditional: bool = False
    steps: int = 10000
    batch: int = 128
    lr: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 500
    max_minutes: float | None = None
    device: str = "cpu"


def optimiser_path(out: Path) -> Path:
    """Where the optimiser and RNG state of a training saved at ``out`` lie."""
    return out.with_name(out.name + ".optim.pt")


def _arch_params(cfg: TrainConfig) -> dict:
    if cfg.arch == "resnet":
        return {"width": cfg.width, "blocks": cfg.blocks}
    return {"width": cfg.width}


def train(
    cfg: TrainConfig,
    data: Dataset,
    out: str | Path,
    dataset_id: str,
    resume: bool = False,
    on_progress: Callable[[int, float, float], None] | None = None,
) -> ModelInfo:
    """Train, writing ``out`` every ``checkpoint_every`` steps and at the end.

    The optimiser state and the RNG state sit beside the checkpoint so that a
    resumed run continues exactly where it stopped.
    """
    out = Path(out)
    dev = torch.device(cfg.device)
    images = data.images.to(dev)
    labels = data.labels.to(dev) if data.labels is not None else None
    num_classes = data.num_classes if cfg.conditional else 0
    if cfg.conditional and labels is None:
        raise ValueError(f"{data.source}: a conditional model needs a labelled dataset")
    info = ModelInfo(
        arch=cfg.arch,
        arch_params=_arch_params(cfg),
        image_size=int(images.shape[-1]),
        channels=int(images.shape[1]),
        num_classes=num_classes,
        padding=cfg.padding,
        dataset={"id": dataset_id, "source": data.source, "size": len(data)},
        name=out.stem,
    )
    torch.manual_seed(cfg.seed)
    net = build_network(cfg.arch, **network_params(info)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    step, seconds, ema_loss = 0, 0.0, math.nan
    if resume and out.exists():
        loaded = load_checkpoint(out, dev)
        net.load_state_dict(loaded.net.state_dict())
        info.training = dict(loaded.info.training)
        state = torch.load(str(optimiser_path(out)), map_location=dev, weights_only=True)
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        step = int(state["step"])
        seconds = float(state["seconds"])
        ema_loss = float(state.get("ema_loss", math.nan))
        # Both limits count the whole training: a resume that starts past them would
        # only rewrite the checkpoint, so say so before anything is written.
        over_time = cfg.max_minutes is not None and seconds >= 60 * cfg.max_minutes
        if step >= cfg.steps or over_time:
            raise ArgumentError(
                "--max-minutes" if over_time else "--steps",
                f"{cfg.max_minutes if over_time else cfg.steps}: {out} has already trained "
                f"{step} steps in {seconds / 60:.1f} minutes, and --steps and --max-minutes "
                "count the whole training; raise them to continue",
            )
    net.train()
    t_start = time.time() - seconds

    def save() -> None:
        info.training = {
            "steps": step,
            "batch": cfg.batch,
            "lr": cfg.lr,
            "lr_decay_per_batch": LR_DECAY,
            "seed": cfg.seed,
            "final_loss": ema_loss,
            "seconds": round(time.time() - t_start, 1),
            "device": str(dev),
        }
        state = {
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "step": step,
            "seconds": time.time() - t_start,
            "ema_loss": ema_loss,
        }
        # Weights and optimiser state must describe the same step for --resume: Ctrl+C
        # waits for both, and each file is replaced whole.
        with interrupt.deferred():
            save_checkpoint(out, net, info)
            with atomic_path(optimiser_path(out)) as tmp:
                torch.save(state, str(tmp))

    n = images.shape[0]
    while step < cfg.steps:
        if cfg.max_minutes is not None and time.time() - t_start > 60 * cfg.max_minutes:
            break
        idx = torch.randint(0, n, (cfg.batch,), generator=gen).to(dev)
        t = (torch.randint(0, 1000, (cfg.batch,), generator=gen).float() / 1000).to(dev)
        eps = torch.randn((cfg.batch, *images.shape[1:]), generator=gen).to(dev)
        ab = abar_tensor(t)[:, None, None, None]
        x_t = ab.sqrt() * images[idx] + (1 - ab).sqrt() * eps
        lab = labels[idx] if num_classes else None
        loss = F.mse_loss(net(x_t, t, lab), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # Batch k trains at lr * decay**k, set from the global step itself: a scheduler
        # counting from 0 would restart the decay on resume.
        for group in opt.param_groups:
            group["lr"] = cfg.lr * LR_DECAY**step
        opt.step()
        step += 1
        li = float(loss.item())
        ema_loss = li if math.isnan(ema_loss) else 0.99 * ema_loss + 0.01 * li
        if on_progress is not None:
            on_progress(step, ema_loss, time.time() - t_start)
        if step % cfg.checkpoint_every == 0:
            save()
    save()
    return info
