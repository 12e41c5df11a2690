#!/usr/bin/env bash
# One call on a lent GPU machine: train, side by side for MINUTES (default 8), every inpainting
# run carried in .gpu_data/inpaint-NAME/ (checkpoint.pt and/or `args`: extra flags over the recipe
# below, e.g. --init) and the damage detector in .gpu_data/detect/ (the same); leave in $OUT what
# is needed to go on training on the CPU here. See docs/MODEL.md, "Commands".
# One inpainting run at batch 8 is bound by kernel launches, not by the GPU (11 steps/s on an
# H200, the card mostly idle), so runs share the card at little cost; each makes its batches in
# worker processes (the machine has 16 cores).
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
MINUTES=${1:-8}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-4}
OUT=${OUT:-runs/gpu-out}
mkdir -p "$OUT"
for src in .gpu_data/inpaint-*/ .gpu_data/detect/; do
  [ -f "$src/checkpoint.pt" ] || [ -f "$src/args" ] || continue
  name=$(basename "$src")
  work=runs/gpu-$name
  mkdir -p "$work"
  # A later call may find a bare machine (it goes back 30 s after a call): start from the
  # carried checkpoint unless this machine already holds a newer one.
  [ -f "$work/checkpoint.pt" ] || [ ! -f "$src/checkpoint.pt" ] || cp "$src/checkpoint.pt" "$work/"
  extra=$(cat "$src/args" 2>/dev/null || true)
  if [ "$name" = detect ]; then
    python3 -m restore train .gpu_data/train --task detect --out "$OUT/detect.pt" --work-dir "$work" \
      --resume --device "$DEVICE" --batch-size 16 --workers "$WORKERS" --lr 5e-4 --crop 256 \
      --minutes "$MINUTES" --checkpoint-minutes 2 --sample-every 2000 --quiet $extra \
      > "$OUT/$name.log" 2>&1 &
  else
    python3 -m restore train .gpu_data/train --out "$OUT/$name-model.pt" --work-dir "$work" --resume \
      --device "$DEVICE" --batch-size 8 --workers "$WORKERS" --crop 192 --perceptual-weight 0 \
      --r1-weight 0.01 --adv-weight 0.01 --hole-lowpass 8 --hole-pixel-weight 3 --fake-patches share \
      --transpose 0.5 --minutes "$MINUTES" --checkpoint-minutes 2 --sample-every 2000 --quiet $extra \
      > "$OUT/$name.log" 2>&1 &
  fi
done
wait
for work in runs/gpu-*/; do
  name=$(basename "$work"); name=${name#gpu-}
  [ -f "$work/metrics.jsonl" ] && cp "$work/metrics.jsonl" "$OUT/$name-metrics.jsonl"
  if [ "$name" = detect ]; then
    cp "$work/checkpoint.pt" "$OUT/detect-checkpoint.pt"
  else
    python3 -m restore.train.slim "$work/checkpoint.pt" "$OUT/$name-slim.pt"
  fi
  tail -n 1 "$OUT/$name.log" "$OUT/$name-metrics.jsonl"
done
# The accelerator's answers against the CPU's (inpainter and detector), once the card is free.
python3 benchmarks/check_device.py --device "$DEVICE" > "$OUT/check-device.txt" 2>&1
cat "$OUT/check-device.txt"
