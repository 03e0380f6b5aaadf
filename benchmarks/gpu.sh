#!/usr/bin/env bash
# Every GPU row of benchmarks/README.md in one command, on one CUDA machine, in under 10 minutes:
#     GANTK_DATA=../shared/datasets bash benchmarks/gpu.sh
# One JSON line per setting into ${OUT:-gpu-results}/<plugin>.jsonl, plus headline.jsonl and gpu.log.
# Each setting runs the engine against an equal plain loop; with CUDA graphs on, the plain loop is the
# ceiling (the same step written by hand and captured whole). Issue 15's goals read from it:
#   pix2pix: the headline run's steps/s (goal: >= 200, i.e. 200 facades epochs in under 6 minutes);
#   dcgan:   engine_images_s of the best setting (goal: >= 35,000 at batch 128).
set -uo pipefail
cd "$(dirname "$0")"
out=${OUT:-gpu-results}
mkdir -p "$out"
log="$out/gpu.log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$log" 2>&1
python -c "import torch, kornia; print('torch', torch.__version__, 'kornia', kornia.__version__)" >>"$log" 2>&1

settings=(
  "--precision fp32 --cuda-graph off"
  "--precision fp32 --cuda-graph on"
  "--precision bf16 --channels-last --cuda-graph off"
  "--precision bf16 --channels-last --cuda-graph on"
  "--precision fp16 --channels-last --cuda-graph on"
  "--precision bf16 --compile default --cuda-graph off"
  "--precision bf16 --channels-last --compile reduce-overhead"
)
bench() {  # a setting that crashes or hangs is logged and the table goes on
  echo "== $*" >>"$log"
  timeout 120 python "$@" >"$out/last.txt" 2>&1
  local rc=$?
  cat "$out/last.txt" >>"$log"
  tail -n 1 "$out/last.txt" | grep '^{' >>"$out/$(basename "$1" .py).jsonl" || echo "{\"args\": \"$*\", \"rc\": $rc}" >>"$out/$(basename "$1" .py).jsonl"
}
for s in "${settings[@]}"; do
  # shellcheck disable=SC2086
  bench dcgan.py --device cuda --steps 100 --warmup 20 --reps 2 $s
  # shellcheck disable=SC2086
  bench pix2pix.py --device cuda --steps 400 --warmup 50 --reps 2 $s
done
for s in "--precision fp32 --cuda-graph off" "--precision bf16 --channels-last --cuda-graph on"; do
  # shellcheck disable=SC2086
  bench cgan.py --device cuda --steps 200 --warmup 50 --reps 2 $s
  # shellcheck disable=SC2086
  bench srgan.py --device cuda --steps 100 --warmup 20 --reps 2 $s
  # shellcheck disable=SC2086
  bench infogan.py --device cuda --steps 200 --warmup 50 --reps 2 $s
  # shellcheck disable=SC2086
  bench cyclegan.py --device cuda --steps 100 --warmup 20 --reps 2 $s
  # the engine captures a lazy kind of step after 3 eager ones: R1's (every 16) from step 48 on
  # shellcheck disable=SC2086
  bench stylegan2.py --device cuda --steps 128 --warmup 64 --reps 2 $s
done

# train.augment's cost per policy (and whether the augmented step still captures as one CUDA graph: a
# fallback to eager would show as a warning in gpu.log and a drop in steps/s)
echo "== augment" >>"$log"
timeout 300 python augment.py cost --device cuda --dcgan-steps 60 --cgan-steps 300 >>"$out/augment.txt" 2>>"$log"

# the headline, end to end on the real facades with its defaults (sampling, evaluation, checkpoints):
# 6,000 of its 72,000 steps, then the rate from its own metrics.jsonl
run=$(mktemp -d)/pix2pix
echo "== headline" >>"$log"
start=$(date +%s)
timeout 150 gantk train ../plugins/pix2pix --out "$run" --max-steps 6000 >>"$log" 2>&1
echo "rc=$? wall_s=$(( $(date +%s) - start ))" >>"$log"
python - "$run" >>"$out/headline.jsonl" <<'PY'
import json, sys
from pathlib import Path
lines = [json.loads(x) for x in (Path(sys.argv[1]) / "metrics.jsonl").read_text().splitlines()]
rates = [r["steps_per_s"] for r in lines if "steps_per_s" in r][2:]  # past the warm-up and capture
best = sorted(rates)[len(rates) // 2] if rates else 0.0
evals = [r for r in lines if any(k.startswith("eval/") for k in r)]
timed = [r for r in lines if "steps_per_s" in r]
overall = (timed[-1]["step"] - timed[0]["step"]) / (timed[-1]["time"] - timed[0]["time"]) if len(timed) > 1 else 0.0
print(json.dumps({"headline": "gantk train plugins/pix2pix", "median_steps_s": round(best, 1),
                  "overall_steps_s_with_samples_eval_checkpoints": round(overall, 1),
                  "minutes_for_72000_steps": round(72000 / best / 60, 1) if best else None,
                  "last_eval": evals[-1] if evals else None}))
PY
cat "$out"/*.jsonl
