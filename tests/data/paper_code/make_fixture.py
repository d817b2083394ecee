"""Writes the test fixtures with the paper's reference code (run in a scratch folder)."""

import os
import sys

import numpy as np
import torch


def tiny_ddim(DDIM, backbone, noise_schedule):
    """``backbone`` with its weights drawn N(0, 0.08), in the authors' DDIM at image size 8."""
    with torch.no_grad():
        for p in backbone.parameters():
            p.normal_(0, 0.08)
    return DDIM(
        pretrained_backbone=backbone,
        in_channels=1,
        default_imsize=8,
        noise_schedule=noise_schedule,
    )


layout, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs"))
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
if layout == "old":
    from utils.noise_schedules import cosine_noise_schedule

    from models import DDIM, MinimalResNet

    bb = MinimalResNet(channels=1, emb_dim=16, mode="zeros", num_layers=2, lastksize=3)
    model = tiny_ddim(DDIM, bb, cosine_noise_schedule)
    torch.save(model, f"{out}/backbone_tiny_ResNet_zeros.pt")
    torch.save(bb.state_dict(), f"{out}/tiny_ResNet_zeros_state_dict.pt")
    label = None
    name = "ddim_resnet_zeros.npz"
else:
    from src.models import DDIM, MinimalUNet
    from src.utils.noise_schedules import cosine_noise_schedule

    bb = MinimalUNet(
        channels=1,
        fsizes=[8, 16],
        mode="circular",
        conditional=True,
        num_classes=3,
        emb_dim=16,
        normalization="GroupNorm",
        last_norm=True,
        lastksize=3,
    )
    model = tiny_ddim(DDIM, bb, cosine_noise_schedule)
    torch.save(model, f"{out}/backbone_tiny_UNet_circular_conditional.pt")
    # the format their calibration script writes (torch.save of a list), with their spelling
    torch.save(
        [3, 3, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7],
        f"{out}/scales_tiny_UNet_circular_conditonal.pt",
    )
    label = torch.tensor([0, 2])
    name = "ddim_unet_circular_conditional.npz"
noise = torch.randn(2, 1, 8, 8)
nsteps = 6
sample = model.sample(
    batch_size=2, x=noise.clone(), nsteps=nsteps, label=label, device=torch.device("cpu")
)
np.savez(
    f"{out}/{name}",
    noise=noise.numpy(),
    sample=sample.detach().numpy(),
    label=np.array([-1, -1]) if label is None else label.numpy(),
    nsteps=nsteps,
)
print(name, float(sample.abs().max()))
