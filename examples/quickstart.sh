#!/usr/bin/env bash
# The quickstart that `make demo` runs: a toy dataset, through the chain of commands.
# Each step is a plain gaia command; stdout carries data, so steps chain through pipes.
set -euo pipefail
out=${1:-demo-out}
rm -rf "$out"
mkdir -p "$out"

# 1. A toy COCO-format dataset of rendered shapes (train and val splits); the summary is JSON on stdout.
gaia toy-data "$out/toy" --images 64 --size 128 --seed 0 > "$out/toy.summary.json"

# 2. Inspect it: counts per category, box sizes and aspect groups, the validation report.
gaia inspect -v "$out/toy/train.json" > "$out/train.inspect.json"

# 3. Files chain through pipes too: '-' reads stdin (a dataset read from stdin needs its image folder).
gaia inspect --images "$out/toy" - < "$out/toy/val.json" |
  python3 -c 'import json, sys; s = json.load(sys.stdin); print("val:", s["images"], "images,", s["boxes"], "boxes; validation ok:", s["validation"]["ok"])'

# 4. One label space over COCO and the toy data (GAIA 3.1.1): similar names merge, the rest are appended.
#    review.json lists the borderline pairs and conflicts for a person to mark and pass back with --decisions.
gaia unify-labels coco "toy=$out/toy/train.json" --review "$out/review.json" > "$out/labels.json"

# 5. Rewrite the toy validation set into the unified ids (kept beside its images).
gaia unify-labels --apply "$out/labels.json" "$out/toy/val.json" > "$out/toy/val.unified.json"
gaia inspect "$out/toy/val.unified.json" -q > /dev/null

# 6. Montage pre-training on the toy data alone: object and background crops, grouped by shape, then the
#    supernet's backbone trained on montages of 4 crops with the ERF-adaptive dense loss. Look at montage.png.
gaia extract-montage --data "$out/toy/train.json" --min-size 10 -o "$out/samples.h5" \
  --preview 9 --preview-out "$out/montage.png" |
  gaia pretrain - --space tiny --size 128 --epochs 4 --batch-size 8 --lr-per-image 0.005 --warmup-iters 10 \
    --erf-every 20 --workers 0 -o "$out/backbone.h5" > "$out/backbone.manifest"

# 7. A weight-sharing supernet over the 'tiny' search space (every path shares one set of weights), its
#    backbone starting from the pre-trained one. The manifest line on stdout names the HDF5 file; later
#    commands accept it in place of the path.
gaia train-supernet --data "$out/toy/train.json" --space tiny --epochs 2 --batch-size 4 \
  --init "$out/backbone.h5" --lr-per-image 0.0025 --warmup-iters 10 --workers 0 -o "$out/supernet.h5" \
  > "$out/supernet.manifest"

# 8. Evaluate one path: extracted, its batch-norm statistics recalibrated on training images, COCO metrics.
gaia space sample tiny -n 1 --rule max |
  gaia eval --weights "$out/supernet.manifest" --arch - --data "$out/toy/val.json" \
    --recalibrate 64 --recalibrate-data "$out/toy/train.json" > "$out/eval.json"

# 9. The headline: the best arch of GAIA's space for 25 ms on a V100, by the v100 profile (Table 2).
gaia search --latency 25 --device v100 > "$out/arch.json"
gaia space flops "$out/arch.json" > "$out/arch.flops.json"

echo "quickstart done: see $out/" >&2
