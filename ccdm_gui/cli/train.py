"""ccdm train: fit the paper's ResNet or UNet to a dataset."""

from __future__ import annotations

import argparse


def _cmd_train(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..core.datasets import load_dataset, subset
    from ..core.devices import resolve_device
    from ..core.train import TrainConfig, train

    if args.threads:
        torch.set_num_threads(args.threads)
    data = subset(load_dataset(args.dataset, args.image_size, args.channels), args.subset)
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
        device=resolve_device(args.device),
    )
    bar = tqdm(total=cfg.steps, desc=f"train {args.out}", unit="step", mininterval=5)

    def progress(step: int, loss: float, seconds: float) -> None:
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.refresh() if step % 50 == 0 else None

    info = train(cfg, data, args.out, args.dataset_id or data.name, args.resume, progress)
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
    t.add_argument("--steps", type=int, default=10000)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.add_argument("--max-minutes", type=float, default=None)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=int, default=0)
    t.set_defaults(func=_cmd_train)
