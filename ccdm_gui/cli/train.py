"""ccdm train: fit the paper's ResNet or UNet to a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_train(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..core import validate
    from ..core.datasets import DatasetError, load_dataset, subset
    from ..core.train import TrainConfig, optimiser_path, train

    for name in ("width", "blocks", "image_size", "subset", "steps", "batch", "checkpoint_every"):
        validate.at_least("--" + name.replace("_", "-"), getattr(args, name))
    validate.at_least("--threads", args.threads, 0)
    if not args.lr > 0:
        raise validate.ArgumentError("--lr", f"{args.lr}: must be more than 0")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise validate.ArgumentError("--max-minutes", f"{args.max_minutes}: must be more than 0")
    if args.channels not in (1, 3):
        raise validate.ArgumentError("--channels", f"{args.channels}: must be 1 or 3")
    device = validate.device(args.device)
    out = Path(args.out)
    resuming = args.resume and out.exists()
    validate.output_file(
        "--out", out, overwrite=args.overwrite or args.resume, suffixes=("safetensors",)
    )
    if out.exists() and not (args.resume or args.overwrite):
        raise validate.ArgumentError(
            "--out", f"{out}: already exists; add --resume to continue it or --overwrite"
        )
    if resuming:
        validate.load_model(out)
        if not optimiser_path(out).is_file():
            raise validate.ArgumentError(
                "--out", f"{out}: cannot resume, {optimiser_path(out).name} is missing"
            )
    validate.dataset_path(args.dataset)
    try:
        data = subset(load_dataset(args.dataset, args.image_size, args.channels), args.subset)
    except DatasetError as e:
        raise validate.ArgumentError("dataset", str(e)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(
        arch=args.arch,
        width=args.width,
        blocks=args.blocks,
        padding=args.padding,
        conditional=args.conditional,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        max_minutes=args.max_minutes,
        device=device,
    )
    bars: list[tqdm] = []  # made at the first step, so a refused resume prints no bar

    def progress(step: int, loss: float, seconds: float) -> None:
        if not bars:
            bars.append(tqdm(total=cfg.steps, desc=f"train {args.out}", unit="step", mininterval=5))
        bar = bars[0]
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.refresh() if step % 50 == 0 else None

    info = train(cfg, data, args.out, args.dataset_id or data.name, args.resume, progress)
    for bar in bars:
        bar.close()
    print(f"wrote {args.out}: {info.training}")
    return 0


def register(sub) -> None:
    t = sub.add_parser("train", help="train a CNN denoiser (the paper's objective)")
    t.add_argument("--dataset", required=True)
    t.add_argument("--dataset-id", default=None)
    t.add_argument("--out", required=True)
    t.add_argument("--arch", choices=["resnet", "unet"], default="resnet")
    t.add_argument("--width", type=int, default=64)
    t.add_argument("--blocks", type=int, default=6)
    t.add_argument("--padding", choices=["zeros", "circular"], default="zeros")
    t.add_argument("--conditional", action="store_true")
    t.add_argument("--image-size", type=int, default=32)
    t.add_argument("--channels", type=int, default=1)
    t.add_argument("--subset", type=int, default=None)
    t.add_argument(
        "--steps",
        type=int,
        default=10000,
        help="stop at this many steps in all (--resume included)",
    )
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop after this many minutes of training in all (--resume included)",
    )
    t.add_argument("--resume", action="store_true", help="continue the training saved in --out")
    t.add_argument("--overwrite", action="store_true", help="start over, replacing --out")
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=int, default=0)
    t.set_defaults(func=_cmd_train)
