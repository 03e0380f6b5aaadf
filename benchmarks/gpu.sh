#!/usr/bin/env bash
# Every GPU row of benchmarks/README.md in one go, on one CUDA machine: one JSON line per setting into
# ${OUT:-gpu-results}/<plugin>.jsonl. Issue 7's goals read from it: DCGAN's best engine setting against
# the plain fp32 loop (goal: 2x), and pix2pix's minutes_for_200_epochs (goal: under 10).
#     GANTK_DATA=../shared/datasets bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")"
out=${OUT:-gpu-results}
mkdir -p "$out"
settings=(
  "--precision fp32"
  "--precision fp32 --channels-last"
  "--precision bf16 --channels-last"
  "--precision fp16 --channels-last"
  "--precision bf16 --channels-last --compile default"
  "--precision bf16 --channels-last --compile reduce-overhead"
)
for s in "${settings[@]}"; do
  # shellcheck disable=SC2086
  python dcgan.py --device cuda --steps 100 --warmup 20 --reps 3 $s | tail -n 1 >> "$out/dcgan.jsonl"
  python cgan.py --device cuda --steps 200 --warmup 50 --reps 3 $s | tail -n 1 >> "$out/cgan.jsonl"
  python pix2pix.py --device cuda --steps 500 --warmup 100 --reps 3 $s | tail -n 1 >> "$out/pix2pix.jsonl"
  python srgan.py --device cuda --steps 100 --warmup 20 --reps 3 $s | tail -n 1 >> "$out/srgan.jsonl"
done
