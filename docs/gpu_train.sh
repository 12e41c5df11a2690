#!/usr/bin/env bash
# One call on a lent GPU machine: continue the inpainting model and the damage detector side by
# side for MINUTES (default 8), each from the checkpoint carried in .gpu_data/ (see docs/MODEL.md,
# "Commands"), and leave in $OUT what is needed to go on training on the CPU here.
# The inpainter's step at batch 8 is bound by kernel launches, not by the GPU, so the detector
# shares the card at little cost; both make their batches in worker processes (16 cores there).
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
MINUTES=${1:-8}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-runs/gpu-out}
mkdir -p runs/gpu runs/gpu-detect "$OUT"
# A later call may find a bare machine (it goes back 30 s after a call): start from the carried
# checkpoints unless this machine already holds newer ones.
[ -f runs/gpu/checkpoint.pt ] || cp .gpu_data/gpu/checkpoint.pt runs/gpu/
[ -f runs/gpu-detect/checkpoint.pt ] || cp .gpu_data/gpu-detect/checkpoint.pt runs/gpu-detect/
python3 -m restore train .gpu_data/train --out "$OUT/model.pt" --work-dir runs/gpu --resume \
  --device "$DEVICE" --batch-size 8 --workers "${INPAINT_WORKERS:-6}" --crop 192 --perceptual-weight 0 \
  --r1-weight 0.01 --adv-weight 0.01 --hole-lowpass 8 --hole-pixel-weight 3 --fake-patches share \
  --transpose 0.5 --minutes "$MINUTES" --checkpoint-minutes 2 --sample-every 2000 --quiet \
  > "$OUT/inpaint.log" 2>&1 &
python3 -m restore train .gpu_data/train --task detect --out "$OUT/detect.pt" --work-dir runs/gpu-detect \
  --resume --device "$DEVICE" --batch-size 16 --workers "${DETECT_WORKERS:-7}" --lr 5e-4 --crop 256 \
  --minutes "$MINUTES" --checkpoint-minutes 2 --sample-every 2000 --quiet > "$OUT/detect.log" 2>&1 &
wait
python3 -m restore.train.slim runs/gpu/checkpoint.pt "$OUT/slim.pt"
cp runs/gpu/metrics.jsonl "$OUT/inpaint-metrics.jsonl"
cp runs/gpu-detect/metrics.jsonl "$OUT/detect-metrics.jsonl"
cp runs/gpu-detect/checkpoint.pt "$OUT/detect-checkpoint.pt"
tail -n 2 "$OUT/inpaint.log" "$OUT/detect.log" "$OUT/inpaint-metrics.jsonl" "$OUT/detect-metrics.jsonl"
