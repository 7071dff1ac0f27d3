#!/usr/bin/env bash
# The quickstart that `make demo` runs: make a toy dataset, then look at it.
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

echo "quickstart done: see $out/" >&2
