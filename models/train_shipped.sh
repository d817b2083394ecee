#!/usr/bin/env bash
# How the shipped models were trained (one CPU thread each, run side by side on a
# 2-core machine; wall-clock bounded, so the step count is what the time allowed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
common="--dataset resources/datasets/mnist --dataset-id mnist-train-60k --batch 64 --lr 4e-4 --seed 0 --threads 1 --steps 100000 --checkpoint-every 250"
$PY -m ccdm_gui train $common --arch resnet --width 64 --blocks 6 --padding zeros    --max-minutes 75 --out models/mnist_resnet_zeros.safetensors    > runs/train_resnet_zeros.log 2>&1 &
$PY -m ccdm_gui train $common --arch resnet --width 64 --blocks 6 --padding circular --max-minutes 70 --out models/mnist_resnet_circular.safetensors > runs/train_resnet_circular.log 2>&1 &
$PY -m ccdm_gui train $common --arch unet   --width 32            --padding zeros    --max-minutes 60 --out models/mnist_unet_zeros.safetensors      > runs/train_unet_zeros.log 2>&1 &
wait
