#!/usr/bin/env bash
# The quickstart that `make demo` runs: toy datasets, through the whole chain of commands, from data to a
# fine-tuned detector's pictures. Each step is a plain gaia command; stdout carries data, so steps chain
# through pipes. Sizes are tiny so that it runs in a few minutes on a CPU: the point is the chain, not the AP.
# Run it with gaia's environment on PATH (`make demo` does): the python3 snippets use its PIL and h5py.
set -euo pipefail
out=${1:-demo-out}
rm -rf "$out"
mkdir -p "$out"
started=$SECONDS
# One compute thread per process unless the caller says otherwise: these models are tiny, and on a machine
# whose cores are busy with other work, two threads made training 3-4 times slower than one.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

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
  gaia pretrain - --space tiny --size 128 --epochs 4 --batch-size 8 --erf-every 20 --workers 0 \
    -o "$out/backbone.h5" > "$out/backbone.manifest"

# 7. A weight-sharing supernet over the 'tiny' search space (every path shares one set of weights), from a
#    random start: `--recipe auto` picks the from-scratch recipe and says so. (`--init "$out/backbone.h5"`
#    would start from step 6's backbone, at GAIA's rate for pre-trained backbones; 20 steps of Montage on 64
#    images are not that: measured at 16 epochs, the path below scored AP50 3.2 from it and 12.9 from
#    scratch.) 32 epochs: a supernet needs about twice one model's steps to serve its paths (bench_recipe);
#    step 11's fine-tuned AP50 went from 58.4 (16 epochs) to 74.0, and to 76.2 (AP 39.0) with the
#    scratch recipe's late rate drops (--lr-steps late). The manifest line on stdout names the
#    HDF5 file; later commands accept it in place of the path.
gaia train-supernet --data "$out/toy/train.json" --space tiny --epochs 32 --batch-size 4 \
  --workers 0 -o "$out/supernet.h5" > "$out/supernet.manifest"

# 8. Evaluate one path: extracted, its batch-norm statistics recalibrated on training images, COCO metrics.
gaia space sample tiny -n 1 --rule max > "$out/path.json"
gaia eval --weights "$out/supernet.manifest" --arch "$out/path.json" --data "$out/toy/val.json" \
  --recalibrate 64 --recalibrate-data "$out/toy/train.json" > "$out/eval.json"

# 9. The headline: the best arch of GAIA's space for 25 ms on a V100, by the v100 profile (Table 2).
gaia search --latency 25 --device v100 > "$out/arch.json"
gaia space flops "$out/arch.json" > "$out/arch.flops.json"

# --- DetOFA's path filter and search-space pruning (fit-pathfilter, prune) ----------------------------------
# 9a. Measure 5 paths in each of 3 FLOPs buckets of the supernet (BN recalibrated; validation loss and AP),
#     fit the path filter on 80% of them and judge it on the rest beside FLOPs, MLP and random baselines
#     (a toy size: the benchmark measures 200); prune the tiny space by it; sample the pruned space with
#     each path's bucket and score; search by the filter's score.
gaia fit-pathfilter --weights "$out/supernet.manifest" --data "$out/toy/val.json" \
  --recalibrate-data "$out/toy/train.json" --recalibrate 8 --buckets 3 --paths-per-bucket 5 --epochs 10 \
  -o "$out/filter.h5" > "$out/filter.manifest"
gaia prune --space tiny --pathfilter "$out/filter.h5" --strategy flops-score-bucket --op-ratio 0.1 \
  --samples 40 > "$out/pruned.json"
gaia space sample "$out/pruned.json" -n 5 --rule uniform --pathfilter "$out/filter.h5" > "$out/pruned.samples.jsonl"
gaia search --space tiny --flops 0.05 --pathfilter "$out/filter.h5" --population 20 --generations 20 \
  > "$out/arch.pathfilter.json"
# --- end of the path filter block ----------------------------------------------------------------------------

# 10. A target task: a second, smaller toy dataset with three of the supernet's shapes and one it has never
#     seen (diamond); 32 validation images (8 gave AP50 52.5 where 32 gave 33.5 for the same model).
gaia toy-data "$out/target" --images 32 --val-images 32 --size 128 --seed 1 --classes circle,square,triangle,diamond \
  > "$out/target.summary.json"

# --- select-data (GAIA 3.2.2) -----------------------------------------------------------------------------
# 10b. Upstream images for the target: each image's per-category fc7 vector (the mean of its boxes' box-head
#      features) through the path, cached per model and dataset; the toy images most similar to the target's,
#      category by category. Step 11 fine-tunes on them too (--extra-data); `gaia inspect` summarises them.
gaia select-data --weights "$out/supernet.manifest" --arch "$out/path.json" --target "$out/target/train.json" \
  --upstream "toy=$out/toy/train.json" --strategy most-similar --budget 8 --recalibrate 32 --workers 0 \
  --features "$out/features" > "$out/selection.json"
gaia inspect "$out/selection.json" > "$out/selection.inspect.json"
# --- end of select-data -----------------------------------------------------------------------------------
# --- rank: task-specific architecture selection (GAIA 3.2.1) ---
# 10c. Which path of the supernet suits the target? 4 candidates evaluated directly on its val split (BN
#      recalibrated on its images), the best of each (scale, total depth range) group kept, the top of those
#      fine-tuned with the fast schedule (finetune's engine); the ranking's best is what finetune takes.
gaia space sample tiny -n 4 --seed 2 > "$out/candidates.jsonl"
gaia rank --weights "$out/supernet.manifest" --data "$out/target/train.json" --val "$out/target/val.json" \
  --candidates "$out/candidates.jsonl" --keep 0.25 --lr-per-image 0.0025 --batch-size 4 --recalibrate 32 \
  -o "$out/ranking.json"
gaia finetune --weights "$out/supernet.manifest" --arch "$out/ranking.json" --data "$out/target/train.json" \
  --schedule fast --lr-per-image 0.0025 --batch-size 4 --workers 0 -q -o "$out/ranked.h5" > "$out/ranked.manifest"
# --- end rank ---

# 11. Fine-tune the path on it: classifier surgery keeps the rows of circle, square and triangle and starts
#     diamond afresh (give --labels to borrow the rows of its nearest class instead). The default rate is
#     GAIA's for a large pre-trained detector, too low for a tiny one trained from scratch (0.0025: AP50
#     37.0, 0.005: 47.2, 0.01: 38.7 on this target, earlier); and the 1x schedule's 13 epochs are 130 steps
#     on these 40 images: on 32 validation images, 20 epochs (rate /10 after 13 and 17) gave AP50 33.5 and
#     40 epochs (/10 after 28 and 35) 58.4.
gaia finetune --weights "$out/supernet.manifest" --arch "$out/path.json" --data "$out/target/train.json" \
  --extra-data "$out/selection.json" --schedule custom --epochs 40 --lr-steps 28,35 \
  --lr-per-image 0.005 --batch-size 4 --workers 0 -o "$out/model.h5" > "$out/model.manifest"

# 12. The fine-tuned model on the target's val split: COCO metrics, then its detections drawn on the images.
gaia eval --weights "$out/model.manifest" --data "$out/target/val.json" > "$out/finetune.eval.json"
gaia predict "$out/model.manifest" "$out/target/val" --coco "$out/target/val.json" --draw "$out/drawn" \
  -o "$out/predictions.json"
python3 - "$out/drawn" "$out/predict.png" <<'EOF'
# One picture to look at: the drawn val images tiled 4 to a row.
import sys
from pathlib import Path
from PIL import Image
tiles = [Image.open(p) for p in sorted(Path(sys.argv[1]).glob("*.png"))]
side = max(max(t.size) for t in tiles)
cols = min(4, len(tiles))
sheet = Image.new("RGB", (cols * side, -(-len(tiles) // cols) * side))
for i, t in enumerate(tiles):
    sheet.paste(t, ((i % cols) * side, (i // cols) * side))
sheet.save(sys.argv[2])
EOF

# 13. Deploy it: the fine-tuned model as ONNX (runs in ONNX Runtime, TensorRT reads it), checked against
#     PyTorch on the target's val images before it is written; gaia eval reads the exported file too.
gaia export "$out/model.manifest" --format onnx --dynamic --check "$out/target/val.json" -o "$out/model.onnx" \
  > "$out/model.onnx.manifest"
gaia eval --weights "$out/model.onnx" --data "$out/target/val.json" -q > "$out/onnx.eval.json"

# What each stage wrote, and its key figure.
python3 - "$out" "$((SECONDS - started))" >&2 <<'EOF'
import json, sys
from pathlib import Path
import h5py
out = Path(sys.argv[1])
def load(name):
    return json.loads((out / name).read_text())
def line(name):
    return json.loads((out / name).read_text().splitlines()[0])
def dataset(name):
    s = load(name)
    return (f"{s['train']['images']} train / {s['val']['images']} val images, {s['train']['boxes']} / "
            f"{s['val']['boxes']} boxes; {len(s['categories'])} categories: {', '.join(s['categories'])}")
labels = load("labels.json")
toy = next(d for d in labels["datasets"] if d["name"] == "toy")
merged = sum(c["how"] in ("merged", "decided") for c in toy["categories"])
backbone, ev, arch, flops = line("backbone.manifest"), load("eval.json"), load("arch.json"), load("arch.flops.json")
fev = load("finetune.eval.json")
with h5py.File(out / "model.h5", "r") as f:  # the surgery report is in the model's metadata
    surgery = json.loads(f["meta/surgery"][()])
how = {h: [s["category"] for s in surgery if s["how"] == h] for h in ("kept", "borrowed", "new")}
def pathfilter_row():
    with h5py.File(out / "filter.h5", "r") as f:
        rep = json.loads(f["meta/report"][()])["methods"]
    pruned = load("pruned.json")["pruning"]
    removed = sum(len(s) for b in pruned["buckets"] for part in b["removed"].values() for s in part)
    tau = lambda m: "-" if rep[m]["kendall_tau_b"]["mean"] is None else f"{rep[m]['kendall_tau_b']['mean']:.2f}"
    return (f"held-out tau-b {tau('pathfilter')} (FLOPs {tau('flops')}, MLP {tau('mlp')}); "
            f"prune removed {removed} operations over {len(pruned['buckets'])} buckets")
rows = [
    ("toy/", dataset("toy.summary.json")),
    ("labels.json", f"{len(labels['categories'])} unified categories; toy: {merged} merged, {len(toy['categories']) - merged} new"),
    ("montage.png, backbone.h5", f"montage loss {backbone['loss']:.3f} after {backbone['iterations']} steps"),
    ("supernet.h5, eval.json", f"path {ev['arch']['depth']} {ev['arch']['width']} @{ev['arch']['scale']}: AP {ev['AP']:.1f}, AP50 {ev['AP50']:.1f}"),
    ("arch.json, arch.flops.json", f"{arch['space']} {arch['depth']} @{arch['scale']}: {arch['latency_ms']:.1f} ms on {arch['device']}, {flops['detector']['gflops']:.1f} GFLOPs"),
    ("target/", dataset("target.summary.json")),
    ("selection.json", (lambda s: f"{s['images']} toy images chosen ({s['strategy']}), score median {s['score']['median']:.3f}; per category " + ", ".join(f"{k} {v}" for k, v in s['per_category'].items()))(load("selection.inspect.json")["summary"])),
    ("model.h5, finetune.eval.json", f"AP {fev['AP']:.1f}, AP50 {fev['AP50']:.1f}; surgery: " + ", ".join(f"{len(v)} {k}" + (f" ({', '.join(v)})" if v else "") for k, v in how.items())),
    ("filter.h5, pruned.json", pathfilter_row()),
    ("ranking.json, ranked.h5", (lambda r: f"best of {len(r['candidates'])}: candidate {r['best']['candidate']} {r['best']['depth']} @{r['best']['scale']}, fast-finetuned AP {r['best']['score']:.1f}")(load("ranking.json"))),
    ("predictions.json, predict.png", f"{len(load('predictions.json'))} detections drawn on {len(list((out / 'drawn').glob('*.png')))} val images"),
    ("model.onnx, onnx.eval.json", (lambda e: f"ONNX (opset {e['exported']['opset']}), checked against PyTorch; AP {e['AP']:.1f}, AP50 {e['AP50']:.1f} in ONNX Runtime, one image at a time")(load("onnx.eval.json"))),
]
width = max(len(f) for f, _ in rows)
print(f"\nquickstart done in {sys.argv[2]} s: see {out}/")
for f, figure in rows:
    print(f"  {f:<{width}}  {figure}")
EOF
