"""Train the shipped outside model: a small class-free diffusers UNet2DModel on MNIST 32x32.

Everything that defines the model comes from diffusers itself (``UNet2DModel``,
``DDPMScheduler`` with linear betas, the epsilon objective, ``DDPMPipeline.save_pretrained``),
so the folder it writes is what a diffusers user would have; ccdm-gui opens it as such.
Only the MNIST reader is ccdm-gui's. The blocks are convolution-only (no attention, in the
middle either), which is the architecture family the ELS machine describes.

Bounded by wall-clock minutes (``--max-minutes``); ``--resume`` continues a stopped run
exactly (optimiser, RNG and step are kept in ``train_state.pt`` inside the folder). Each
save writes a complete pipeline folder beside the output and swaps it in, so a reader
(or a crash) never sees half a folder.

    .venv/bin/python models/train_diffusers_unet.py --out /work/trainings/diffusers_unet/pipe \
        --max-minutes 85 --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ccdm_gui.core.datasets import load_dataset  # noqa: E402

LR_DECAY = 0.999965  # per batch, as the shipped ccdm models


def build(block_out_channels: tuple[int, ...], layers: int):
    from diffusers import DDPMScheduler, UNet2DModel

    n = len(block_out_channels)
    unet = UNet2DModel(
        sample_size=32,
        in_channels=1,
        out_channels=1,
        block_out_channels=block_out_channels,
        layers_per_block=layers,
        down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n,
        add_attention=False,
        norm_num_groups=8,
    )
    sched = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=1e-4,
        beta_end=0.02,
        prediction_type="epsilon",
        clip_sample=True,
    )
    return unet, sched


def save(out: Path, unet, sched, state: dict) -> None:
    """Write the whole pipeline folder beside ``out``, then swap it in."""
    from diffusers import DDPMPipeline

    tmp = out.with_name(out.name + ".saving")
    old = out.with_name(out.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(str(tmp), safe_serialization=True)
    torch.save(state, str(tmp / "train_state.pt"))
    (tmp / "training.json").write_text(json.dumps(state["record"], indent=1) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=str(ROOT / "resources/datasets/mnist"))
    ap.add_argument("--out", required=True, help="pipeline folder to write")
    ap.add_argument("--channels", default="16,32,48", help="block_out_channels")
    ap.add_argument("--layers", type=int, default=1, help="layers_per_block")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    channels = tuple(int(c) for c in args.channels.split(","))

    data = load_dataset(args.dataset, image_size=32, channels=1)
    images = data.images  # [-1, 1], [N, 1, 32, 32]
    torch.manual_seed(args.seed)
    unet, sched = build(channels, args.layers)
    opt = torch.optim.Adam(unet.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    step, seconds, ema = 0, 0.0, math.nan
    if args.resume and (out / "train_state.pt").exists():
        from diffusers import UNet2DModel

        unet = UNet2DModel.from_pretrained(str(out / "unet"))
        opt = torch.optim.Adam(unet.parameters(), lr=args.lr)
        st = torch.load(str(out / "train_state.pt"), weights_only=True)
        opt.load_state_dict(st["optimizer"])
        gen.set_state(st["generator"])
        step, seconds, ema = int(st["step"]), float(st["seconds"]), float(st["ema_loss"])
    nparams = sum(p.numel() for p in unet.parameters())
    print(f"UNet2DModel {channels} x{args.layers}: {nparams:,} parameters; from step {step}")
    ab = sched.alphas_cumprod.float()
    unet.train()
    t0 = time.time() - seconds

    def state() -> dict:
        rec = {
            "steps": step,
            "batch": args.batch,
            "lr": args.lr,
            "lr_decay_per_batch": LR_DECAY,
            "seed": args.seed,
            "final_loss": ema,
            "seconds": round(time.time() - t0, 1),
            "threads": args.threads,
            "parameters": nparams,
            "dataset": {"source": data.source, "size": len(data)},
        }
        return {
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "step": step,
            "seconds": time.time() - t0,
            "ema_loss": ema,
            "record": rec,
        }

    n = images.shape[0]
    while step < args.steps:
        if args.max_minutes is not None and time.time() - t0 > 60 * args.max_minutes:
            break
        idx = torch.randint(0, n, (args.batch,), generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (args.batch,), generator=gen)
        eps = torch.randn((args.batch, *images.shape[1:]), generator=gen)
        x0 = images[idx]
        a = ab[t][:, None, None, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps  # = sched.add_noise(x0, eps, t)
        loss = F.mse_loss(unet(x_t, t).sample, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for g in opt.param_groups:
            g["lr"] = args.lr * LR_DECAY**step
        opt.step()
        step += 1
        li = float(loss.item())
        ema = li if math.isnan(ema) else 0.99 * ema + 0.01 * li
        if step % 50 == 0:
            print(f"step {step} loss {ema:.4f} {time.time() - t0:.0f}s", flush=True)
        if step % args.save_every == 0:
            save(out, unet, sched, state())
    save(out, unet, sched, state())
    print(f"done: {step} steps, loss {ema:.4f}, {time.time() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
