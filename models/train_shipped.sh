#!/usr/bin/env bash
# How the shipped models were trained: the width-32 ones on one CPU thread each, side
# by side on the 2-core development machine while other work ran, so each run is
# bounded by wall-clock minutes and its step count is what that time allowed (the real
# counts, losses and seconds are in each checkpoint's JSON metadata, "training").
# The UNet ran 60 minutes, then was continued with --resume (see README).
# mnist_resnet32_zeros was the first default model (width 32); the default
# mnist_resnet_zeros is now the width-64 run at the end, trained alone on both cores
# (its 60 minutes include a few minutes paused for benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
PY=${PY:-.venv/bin/python}
common="--dataset resources/datasets/mnist --dataset-id mnist-train-60k --batch 64 --seed 0 --threads 1 --steps 100000 --checkpoint-every 250"
$PY -m ccdm_gui train $common --lr 5e-4 --arch resnet --width 32 --blocks 6 --padding zeros    --max-minutes 72 --out models/mnist_resnet32_zeros.safetensors  > runs/train_resnet_zeros.log 2>&1 &
$PY -m ccdm_gui train $common --lr 5e-4 --arch resnet --width 32 --blocks 6 --padding circular --max-minutes 72 --out models/mnist_resnet_circular.safetensors > runs/train_resnet_circular.log 2>&1 &
$PY -m ccdm_gui train $common --lr 4e-4 --arch unet   --width 32            --padding zeros    --max-minutes 60 --out models/mnist_unet_zeros.safetensors      > runs/train_unet_zeros.log 2>&1 &
wait
$PY -m ccdm_gui train $common --lr 4e-4 --arch unet   --width 32            --padding zeros    --max-minutes 85 --resume --out models/mnist_unet_zeros.safetensors > runs/train_unet_zeros_resume.log 2>&1
$PY -m ccdm_gui train ${common/--threads 1/--threads 2} --lr 5e-4 --arch resnet --width 64 --blocks 6 --padding zeros --max-minutes 60 --out models/mnist_resnet_zeros.safetensors > runs/train_resnet64_zeros.log 2>&1
# The class-conditional Fashion-MNIST models (the paper's Fashion-MNIST rows): Debian's
# dataset-fashion-mnist, one CPU thread each, side by side, 95 minutes each while the
# machine was shared with other work (the steps they reached are in their metadata).
fashion="--dataset /usr/share/datasets/fashion-mnist --dataset-id fashion-mnist-train-60k --batch 64 --seed 0 --threads 1 --steps 100000 --checkpoint-every 250 --conditional --padding zeros"
$PY -m ccdm_gui train $fashion --lr 5e-4 --arch resnet --width 64 --blocks 6 --max-minutes 95 --out models/fashion_resnet_zeros_cond.safetensors > runs/train_fashion_resnet.log 2>&1 &
$PY -m ccdm_gui train $fashion --lr 4e-4 --arch unet   --width 32            --max-minutes 95 --out models/fashion_unet_zeros_cond.safetensors   > runs/train_fashion_unet.log 2>&1 &
wait
# The diffusers UNet2DModel (an outside model, written by diffusers itself): 80 minutes on
# one thread beside the two Fashion-MNIST runs, then copied without its resume state.
$PY models/train_diffusers_unet.py --out runs/mnist_unet2d --max-minutes 80 --threads 1 > runs/train_unet2d.log 2>&1
mkdir -p models/mnist_unet2d_diffusers
cp -r runs/mnist_unet2d/model_index.json runs/mnist_unet2d/unet runs/mnist_unet2d/scheduler runs/mnist_unet2d/training.json models/mnist_unet2d_diffusers/
