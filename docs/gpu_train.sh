#!/usr/bin/env bash
# Fine-tune both shipped networks on one GPU, side by side, for MINUTES (default 8), then
# compare the GPU's repairs and masks with the CPU's. See docs/MODEL.md, "Training on GPUs".
#
#   bash docs/gpu_train.sh 60                                # photos in ../shared/data/train
#   DATA=my-photos OUT_DIR=my-out bash docs/gpu_train.sh 60
#   INPAINT_ARGS="--adv-weight 0.05" DETECT_ARGS="--widths 72,64,96" bash docs/gpu_train.sh 60
#
# Run folders: RUNS/gpu-inpaint and RUNS/gpu-detect (RUNS=runs); running it again continues them.
# Written to OUT_DIR: inpaint.pt and detect.pt (the exported models), inpaint-slim.pt (an 11 MB
# copy of the generator's checkpoint that `restore train --resume` accepts on another
# machine), each run's log and metrics, and check-device.txt.
# One generator run at batch 8 leaves the card mostly idle (11 steps/s on an H200), so the
# two runs share it at little cost; each makes its batches in WORKERS processes.
set -u
MINUTES=${1:-8}
DATA=${DATA:-../shared/data/train}
RUNS=${RUNS:-runs}
OUT_DIR=${OUT_DIR:-$RUNS/gpu-out}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-4}
CHECK=${CHECK:-1}  # 0 skips benchmarks/check_device.py
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR" "$RUNS/gpu-inpaint" "$RUNS/gpu-detect"

# The generator: the shipped weights with a discriminator first warmed up against them
# (--d-warmup), then the shipped model's last recipe. Extra flags come last, so they win.
python3 -m restore train "$DATA" --out "$OUT_DIR/inpaint.pt" --work-dir "$RUNS/gpu-inpaint" --resume \
  --init default --d-warmup 1600 --adv-weight 0.03 --lr 1.5e-4 --crop 256 --batch-size 8 \
  --device "$DEVICE" --workers "$WORKERS" --minutes "$MINUTES" --checkpoint-minutes 2 \
  --sample-every 2000 --quiet ${INPAINT_ARGS:-} > "$OUT_DIR/inpaint.log" 2>&1 &

# The damage detector: a fine-tune of the shipped one.
python3 -m restore train "$DATA" --task detect --out "$OUT_DIR/detect.pt" --work-dir "$RUNS/gpu-detect" \
  --resume --init preview --lr 4e-4 --crop 256 --batch-size 16 \
  --device "$DEVICE" --workers "$WORKERS" --minutes "$MINUTES" --checkpoint-minutes 2 \
  --sample-every 2000 --quiet ${DETECT_ARGS:-} > "$OUT_DIR/detect.log" 2>&1 &
wait

python3 -m restore.train.slim "$RUNS/gpu-inpaint/checkpoint.pt" "$OUT_DIR/inpaint-slim.pt"
for name in inpaint detect; do
  cp "$RUNS/gpu-$name/metrics.jsonl" "$OUT_DIR/$name-metrics.jsonl" 2>/dev/null
  tail -n 1 "$OUT_DIR/$name.log" "$OUT_DIR/$name-metrics.jsonl" 2>/dev/null
done
if [ "$CHECK" != 0 ]; then
  python3 benchmarks/check_device.py --device "$DEVICE" > "$OUT_DIR/check-device.txt" 2>&1
  cat "$OUT_DIR/check-device.txt"
fi
# Then measure each export against what ships:
#   restore eval ../shared/data/val --model OUT_DIR/inpaint.pt
#   python benchmarks/compare_detectors.py ../shared/data/val --detector preview \
#       --detector OUT_DIR/detect.pt --seeds 0,1,2
