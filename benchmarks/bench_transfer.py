"""Does transfer pay? The user's question on toy data: for a small target task and a compute budget, does gaia's
chain give a better detector than training on the target alone, or than classic transfer from one model?

An upstream corpus of several toy datasets, each its own style (`toy-data --style`) and class set, joined by
`unify-labels`; targets unlike it (a style the corpus lacks, a class it lacks, or both), each with a few
training images and a larger validation set. At each FLOPs budget (detector GMACs at the arch's input scale
with the space's detector, as `gaia space flops --space` and `search --flops` count them; every row's arch is
checked to be within it) and on each target, side by side:

- `scratch`: the budget's arch (search's pick under the budget) trained on the target alone from a random
  start, for the fine-tuning rows' number of steps (`--recipe scratch`);
- `classic`: classic transfer, the way a user would pick a torchvision model: the space's anchor arch, at the
  largest input scale the budget allows (the smallest arch of the space if none), trained alone on the
  upstream corpus with the supernet's compute (its steps), then fine-tuned on the target;
- `gaia`: the supernet trained on the corpus from a Montage pre-trained backbone (`extract-montage`,
  `pretrain`, `train-supernet --init`), `search --top` under the budget, `rank` on the target, `select-data`
  (most-similar upstream images), `finetune --extra-data` of the ranking's best;
- `gaia -rank`: search's best instead of the ranking's; `gaia -select`: fine-tuned on the target alone for
  as many steps as with the selected images; `gaia -montage`: the whole chain on a supernet trained from a
  random start;
- `classic +select`: classic's model fine-tuned with the `gaia` row's selected images (the same file), to
  tell what the selected data adds from what the supernet adds.

Every fine-tuning row uses the same schedule, rate and batch; the seeds (`--seeds`) vary the fine-tuning,
ranking and selection; the upstream models are trained once (seed 0). Each row prints the mean target val AP
over the seeds with the spread (min-max). The targets checked: gaia >= classic + 2 AP at each budget, classic
>= scratch + 20 AP, and select-data adding AP over the target alone at equal steps on the target whose style
the corpus lacks. Rows are kept in `--workdir` (rerun to fill in or extend a table).

`--pool` measures why select-data helps or not: it selects from the corpus the supernet trained on (`corpus`,
GAIA's setting), from as many new images of the corpus's styles and classes that no model has seen
(`fresh`), or from as many new images of the corpus's classes drawn in the target's style (`styled`).

    python benchmarks/bench_transfer.py --quick                   # a smoke run of the chain (its models learn little)
    python benchmarks/bench_transfer.py --scale cpu --workdir W    # small space; several hours on 2 cores
    python benchmarks/bench_transfer.py --scale cpu --epochs 32    # the supernet twice as long (and classic)
    python benchmarks/bench_transfer.py --scale cpu --extra-share 0.2   # selected images a fifth of each epoch
    python benchmarks/bench_transfer.py --scale cpu --pool styled --arms gaia  # select from the target's style
    python benchmarks/bench_transfer.py --scale cpu --extra-stage --arms gaia  # selected images first, then the target
    python benchmarks/bench_transfer.py --scale cpu --target-images 10 --targets comic  # GAIA's data-scarce setting
    python benchmarks/bench_transfer.py --scale gpu --device cuda   # one GPU, one 8-minute call
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_learning import eval_path, gaia, iterations, one_arch_space  # noqa: E402  (the CLI runner and evaluation)

from gaia_cli.data.extra import target_repeats  # noqa: E402

# style -> classes of the upstream corpus; target name -> (style, classes): the corpus lacks comic and cross
UPSTREAM = {"dim": "circle,square,triangle,ring", "paper": "square,triangle,pole,plank",
            "night": "circle,ring,pole,plank,diamond"}
TARGETS = {"comic": ("comic", "circle,square,triangle,ring"),
           "dim+cross": ("dim", "cross,circle,square"),
           "comic+cross": ("comic", "cross,triangle,pole,diamond")}
UNSEEN_STYLE_TARGET = "comic"

SCALES = {
    # upstream: images per style; supernet epochs over the corpus; target: train / val images; ft: fine-tuning
    # quick: 24 epochs of batch 4 (about 1,200 steps), not 12 of 8: the `tiny` supernet from scratch at the
    # scratch rate collapsed to background on this corpus in 300 steps and in 600 (AP 0 on every path, with a
    # Montage start or not); in 1,200 at half the rate a step its largest path scores AP50 75 on dim's val
    "quick": {"space": "tiny", "size": 112, "upstream": 64, "epochs": 24, "batch_size": 4, "target_train": 24,
              "target_val": 48, "ft_epochs": 12, "ft_batch": 4, "select": 24, "montage_epochs": 2, "top": 6,
              "budgets": [0.5], "seeds": 2, "amp": False},
    "cpu": {"space": "small", "size": 128, "upstream": 160, "epochs": 16, "batch_size": 8, "target_train": 40,
            "target_val": 100, "ft_epochs": 12, "ft_batch": 4, "select": 40, "montage_epochs": 4, "top": 8,
            "budgets": [0.35, 0.7], "seeds": 3, "amp": False},
    "gpu": {"space": "small", "size": 160, "upstream": 600, "epochs": 16, "batch_size": 16, "target_train": 50,
            "target_val": 150, "ft_epochs": 12, "ft_batch": 8, "select": 50, "montage_epochs": 4, "top": 8,
            "budgets": [0.35, 0.7], "seeds": 3, "amp": True},
}
FT_LR, FT_WARMUP = 0.005, 10  # fine-tuning's rate per image (the demo's, measured there) and warm-up steps
ARMS = ("scratch", "classic", "gaia", "gaia -rank", "gaia -select", "gaia -montage", "classic +select")
# the rows that fine-tune with select-data's images
SELECTING = ("gaia", "gaia -rank", "gaia -montage", "classic +select")
POOLS = ("corpus", "fresh", "styled")  # where select-data selects from (--pool)


class Bench:
    def __init__(self, args: argparse.Namespace, cfg: dict, work: Path):
        self.args, self.cfg, self.work = args, cfg, work
        self.device = args.device
        self.run_opts = ["--workers", 0, "--device", self.device]
        self.train_opts = [*self.run_opts, *(["--amp"] if cfg["amp"] else [])]  # commands that train have --amp

    # ------------------------------------------------------------------------------------------- data

    def data(self) -> None:
        w, c = self.work, self.cfg
        (w / "up").mkdir(exist_ok=True)
        (w / "targets").mkdir(exist_ok=True)
        for i, (style, classes) in enumerate(UPSTREAM.items()):
            if not (w / "up" / style / "train.json").is_file():
                gaia("toy-data", w / "up" / style, "--images", c["upstream"], "--val-images", 1, "--size", c["size"],
                     "--classes", classes, "--style", style, "--seed", 100 + i, "--force", "-q")
        for i, (name, (style, classes)) in enumerate(TARGETS.items()):
            if not (self.target(name) / "train.json").is_file():
                gaia("toy-data", self.target(name), "--images", c["target_train"], "--val-images", c["target_val"],
                     "--size", c["size"], "--classes", classes, "--style", style, "--seed", 200 + i, "--force", "-q")
        self.labels = w / "labels.json"
        if not self.labels.is_file():
            self.labels.write_text(gaia("unify-labels", *(f"{s}={w / 'up' / s / 'train.json'}" for s in UPSTREAM)))
        self.up_data = [a for s in UPSTREAM for a in ("--data", w / "up" / s / "train.json")]

    def tname(self, name: str) -> str:
        """The target's name in file names: its folder's (`comic`, `dim-cross`), `.nN` added where
        --target-images changed the scale's number of training images."""
        n = self.cfg["target_train"]
        return name.replace("+", "-") + ("" if n == SCALES[self.args.scale_name]["target_train"] else f".n{n}")

    def target(self, name: str) -> Path:
        return self.work / "targets" / self.tname(name)

    def pool(self, target: str) -> list[tuple[str, Path]]:
        """select-data's upstream datasets (name, train.json) for --pool: the corpus, or new images no model has
        seen, as many per dataset as the corpus has (`styled`: one pool per style, the targets of a style share
        it), made here once, with seeds apart from the corpus's and the targets'."""
        if self.args.pool == "corpus":
            return [(s, self.work / "up" / s / "train.json") for s in UPSTREAM]
        style = TARGETS[target][0]
        out = []
        for i, (s, classes) in enumerate(UPSTREAM.items()):
            name, seed = (f"{s}-new", 300 + i) if self.args.pool == "fresh" else (f"{s}-{style}", 400 + i)
            folder = self.work / "pool" / name
            if not (folder / "train.json").is_file():
                folder.parent.mkdir(exist_ok=True)
                gaia("toy-data", folder, "--images", self.cfg["upstream"], "--val-images", 1, "--size",
                     self.cfg["size"], "--classes", classes, "--style", s if self.args.pool == "fresh" else style,
                     "--seed", seed, "--force", "-q")
            out.append((name, folder / "train.json"))
        return out

    def variant(self, arm: str) -> tuple[float | None, str | None, bool]:
        """What varies a selecting row's fine-tuning: --extra-share, a --pool other than the corpus and
        --extra-stage (None or False where they do not apply). They name the row's files and key its kept runs."""
        if arm not in SELECTING:
            return None, None, False
        return self.args.extra_share, (self.args.pool if self.args.pool != "corpus" else None), self.args.extra_stage

    @staticmethod
    def suffix(share: float | None, pool: str | None, staged: bool) -> str:
        return (f".share{share:g}" if share else "") + (f".pool-{pool}" if pool else "") + (".staged" if staged else "")

    # --------------------------------------------------------------------------------------- upstream

    def supernet_file(self, montage: bool) -> Path:
        # the epochs in the name: a workdir keeps the supernets of each --epochs apart
        return self.work / f"supernet{'.montage' if montage else ''}.e{self.cfg['epochs']}.h5"

    def supernet(self, montage: bool) -> Path:
        out = self.supernet_file(montage)
        if out.is_file():
            return out
        init = []
        if montage:
            samples, backbone = self.work / "samples.h5", self.work / "backbone.h5"
            if not backbone.is_file():
                gaia("extract-montage", *self.up_data, "--labels", self.labels, "--min-size", 8, "-o", samples, "-q")
                gaia("pretrain", samples, "--space", self.cfg["space"], "--size", self.cfg["size"], "--epochs",
                     self.cfg["montage_epochs"], "--batch-size", 8, *self.train_opts, "-q", "-o", backbone)
            init = ["--init", backbone]
        start = time.perf_counter()
        # --recipe scratch for both: a toy Montage backbone is not the pre-trained backbone GAIA's rate is set for
        gaia("train-supernet", *self.up_data, "--labels", self.labels, "--space", self.cfg["space"], "--epochs",
             self.cfg["epochs"], "--batch-size", self.cfg["batch_size"], "--recipe", "scratch", *init, *self.train_opts,
             "--restart", "-q", "-o", out)
        print(f"  upstream: {out.name} trained in {time.perf_counter() - start:.0f} s", flush=True)
        return out

    def classic(self, arch: dict) -> Path:
        """The anchor-like arch trained alone on the corpus with the supernet's compute.

        Same images, batch size and epochs as the supernet, hence the same batches (aspect-ratio grouping fills
        each group's last batch, so not images // batch): checked against the supernet's file when it exists,
        so classic and the gaia rows can run as separate processes."""
        tag = f"d{''.join(map(str, arch['depth']))}w{'-'.join(map(str, arch['width']))}s{arch['scale']}"
        out = self.work / f"classic.{tag}.e{self.cfg['epochs']}.h5"
        if not out.is_file():
            space = self.work / f"classic.{tag}.space.json"
            space.write_text(json.dumps(one_arch_space(json.loads(gaia("space", "show", self.cfg["space"])), arch)))
            start = time.perf_counter()
            gaia("train-supernet", *self.up_data, "--labels", self.labels, "--space", space, "--epochs",
                 self.cfg["epochs"], "--batch-size", self.cfg["batch_size"], "--recipe", "scratch", *self.train_opts,
                 "--restart", "-q", "-o", out)
            print(f"  upstream: classic {tag} trained in {time.perf_counter() - start:.0f} s", flush=True)
        supernet = self.supernet_file(montage=True)
        if supernet.is_file():
            assert iterations(out) == iterations(supernet), f"{out.name}: not the supernet's steps"
        return out

    # ------------------------------------------------------------------------------------------ archs

    def gflops(self, arch: dict) -> float:
        """The detector's GMACs with the space's own detector (FPN channels, box head, proposals), the measure
        `search --flops` keeps to: without --space, `space flops` costs a bare arch with R50's detector, whose
        1,000 proposals through a 1,024-wide head swamp the backbone (16-17 GMACs for every arch of `small`)."""
        return json.loads(gaia("space", "flops", "-", "--space", self.cfg["space"],
                               stdin=json.dumps(arch)))["detector"]["gflops"]

    def budgets(self) -> list[float]:
        """Each --budgets share of the way from the space's smallest to its largest detector GFLOPs."""
        lo, hi = (self.gflops(json.loads(gaia("space", "sample", self.cfg["space"], "-n", 1, "--rule", r)))
                  for r in ("min", "max"))
        return [round(lo + share * (hi - lo), 3) for share in self.cfg["budgets"]]

    def classic_arch(self, budget: float) -> dict:
        """The space's anchor at the largest scale within the budget, else the space's smallest arch."""
        space = json.loads(gaia("space", "show", self.cfg["space"]))
        anchor = next(iter(space["anchors"].values()))
        for scale in sorted(space["scale"], reverse=True):
            arch = {"depth": anchor["depth"], "width": anchor["width"], "scale": scale}
            if self.gflops(arch) <= budget:
                return arch
        return self.smallest()

    def smallest(self) -> dict:
        arch = json.loads(gaia("space", "sample", self.cfg["space"], "-n", 1, "--rule", "min"))
        return {k: arch[k] for k in ("depth", "width", "scale")}

    def search(self, budget: float) -> tuple[Path, dict]:
        """search's top archs under the budget (a gaia/arch-set) and its best."""
        out = self.work / f"search.{budget}.json"
        if not out.is_file():
            out.write_text(gaia("search", "--space", self.cfg["space"], "--flops", budget, "--top", self.cfg["top"],
                                "--population", 40, "--generations", 40, "--seed", 0))
        top = json.loads(out.read_text())
        best = top["archs"][0] if "archs" in top else top
        return out, {k: best[k] for k in ("depth", "width", "scale")}

    # ------------------------------------------------------------------------------------------- rows

    def finetune(self, weights: Path, arch: Path | str, target: str, seed: int, tag: str, extra: Path | None = None,
                 epochs: int | None = None, share: float | None = None) -> float:
        t = self.target(target)
        out = json.loads(gaia(
            "finetune", "--weights", weights, "--arch", arch, "--data", t / "train.json", "--val", t / "val.json",
            "--labels", self.labels, *(["--extra-data", extra] if extra else []),
            *(["--extra-share", share] if share else []), "--schedule", "custom",
            "--epochs", epochs or self.cfg["ft_epochs"], "--lr-per-image", FT_LR, "--warmup-iters", FT_WARMUP,
            "--batch-size", self.cfg["ft_batch"], "--recalibrate", 64, *self.train_opts, "--seed", seed, "-q",
            "-o", self.work / "ft" / f"{tag}.h5"))
        return float(out["metrics"]["AP"])

    def rank(self, weights: Path, candidates: Path, target: str, budget: float, seed: int) -> Path:
        """rank's choice for (weights, target, budget, seed): the same run for every row that ranks, made once."""
        t = self.target(target)
        out = self.work / "ft" / f"{self.tname(target)}.{budget}.{weights.stem}.{seed}.ranking.json"
        if out.is_file():
            return out
        gaia("rank", "--weights", weights, "--data", t / "train.json", "--val", t / "val.json", "--labels",
             self.labels, "--candidates", candidates, "--keep", 0.5, "--lr-per-image", FT_LR, "--batch-size",
             self.cfg["ft_batch"], "--recalibrate", 32, "--workers", 0, "--compute-device", self.device, "--seed", seed, "--restart", "-q", "-o", out)
        return out

    def select(self, weights: Path, arch: Path, target: str, seed: int, tag: str) -> Path:
        out = self.work / "ft" / f"{tag}.selection.json"
        pool = self.pool(target)
        upstream = [a for name, coco in pool for a in ("--upstream", f"{name}={coco}")]
        # a features folder holds one model's vectors: one folder per (weights, arch, pool), for select-data
        # recalibrates the path's BN on the pool's images
        mark = "" if self.args.pool == "corpus" else str([name for name, _ in pool])
        key = hashlib.sha256(f"{weights.name}{json.loads(arch.read_text())}{mark}".encode()).hexdigest()[:12]
        features = self.work / "features" / key
        out.write_text(gaia("select-data", "--weights", weights, "--arch", arch, "--target",
                            self.target(target) / "train.json", *upstream, "--labels", self.labels, "--strategy",
                            "most-similar", "--budget", self.cfg["select"], "--recalibrate", 64, "--features",
                            features, *self.run_opts, "--seed", seed, "-q"))
        return out

    def tag(self, arm: str, target: str, budget: float, seed: int) -> str:
        """What names a row's files under ft/ (its fine-tuned model, selection, arch)."""
        return (f"{self.tname(target)}.{budget}.{arm.replace(' ', '').replace('-', '_')}.{seed}"
                + self.suffix(*self.variant(arm)))

    def arm(self, arm: str, target: str, budget: float, seed: int) -> dict:
        tag = self.tag(arm, target, budget, seed)
        share, pool, staged = self.variant(arm)
        candidates, best = self.search(budget)
        best_file = self.work / f"search.{budget}.best.json"
        best_file.write_text(json.dumps(best))
        # the extra images' share of an epoch: rows without them train as many steps
        same_steps = round(self.cfg["ft_epochs"] * (self.cfg["target_train"] + self.cfg["select"])
                           / self.cfg["target_train"])
        if arm == "scratch":
            t = self.target(target)
            space = self.work / "ft" / f"{tag}.space.json"
            space.write_text(json.dumps(one_arch_space(json.loads(gaia("space", "show", self.cfg["space"])), best)))
            sn = self.work / "ft" / f"{tag}.h5"
            gaia("train-supernet", "--data", t / "train.json", "--space", space, "--epochs", same_steps,
                 "--batch-size", self.cfg["ft_batch"], "--recipe", "scratch", *self.train_opts, "--seed", seed,
                 "--restart", "-q", "-o", sn)
            return {"AP": eval_path(sn, best, t / "val.json", t / "train.json", self.device)["AP"], "arch": best}
        if arm in ("classic", "classic +select"):
            arch = self.classic_arch(budget)
            weights = self.classic(arch)
            arch_file = self.work / "ft" / f"{tag}.arch.json"
            arch_file.write_text(json.dumps(arch))
            if arm == "classic":
                return {"AP": self.finetune(weights, arch_file, target, seed, tag, epochs=same_steps), "arch": arch}
            # the `gaia` row's selection (its supernet path chose the images), kept or made as that row makes it
            gaia_tag = self.tag("gaia", target, budget, seed)
            selection = self.work / "ft" / f"{gaia_tag}.selection.json"
            if not selection.is_file():
                supernet = self.supernet(montage=True)
                selection = self.select(supernet, self.rank(supernet, candidates, target, budget, seed), target, seed,
                                        gaia_tag)
            return {"AP": self.with_extra(weights, arch_file, target, seed, tag, selection, share, staged, same_steps),
                    "arch": arch}
        weights = self.supernet(montage=arm != "gaia -montage")
        if arm == "gaia -rank":
            arch_file = best_file
        else:
            arch_file = self.rank(weights, candidates, target, budget, seed)
        arch = json.loads(arch_file.read_text())
        arch = {k: (arch.get("best") or arch)[k] for k in ("depth", "width", "scale")}
        if arm == "gaia -select":
            return {"AP": self.finetune(weights, arch_file, target, seed, tag, epochs=same_steps), "arch": arch}
        selection = self.select(weights, arch_file, target, seed, tag)
        return {"AP": self.with_extra(weights, arch_file, target, seed, tag, selection, share, staged, same_steps),
                "arch": arch}

    def with_extra(self, weights: Path, arch_file: Path, target: str, seed: int, tag: str, selection: Path,
                   share: float | None, staged: bool, same_steps: int) -> float:
        """Fine-tuned with the selected images, as many steps as the rows without them."""
        if staged:
            # two commands, as a user chains them: the target with the selected images for half of the steps,
            # then that detector on the target alone for the other half (the last, low-rate steps see only the
            # target's style)
            first = self.work / "ft" / f"{tag}.first.h5"
            self.finetune(weights, arch_file, target, seed, f"{tag}.first", extra=selection,
                          epochs=max(1, round(self.cfg["ft_epochs"] / 2)))
            return self.finetune(first, arch_file, target, seed, tag, epochs=max(1, round(same_steps / 2)))
        # with --extra-share the target comes `repeat` times an epoch: as many steps in fewer epochs
        repeat = target_repeats(self.cfg["target_train"], self.cfg["select"], share)
        epochs = round(self.cfg["ft_epochs"] * (self.cfg["target_train"] + self.cfg["select"])
                       / (self.cfg["target_train"] * repeat + self.cfg["select"]))
        return self.finetune(weights, arch_file, target, seed, tag, extra=selection, epochs=epochs, share=share)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu", help="sizes: quick, cpu or gpu")
    parser.add_argument("--quick", action="store_true", help="the quick scale")
    parser.add_argument("--seeds", type=int, help="fine-tuning seeds per row (default: the scale's)")
    parser.add_argument("--budgets", help="budgets as shares of the way from the space's smallest to its largest "
                                          "detector GFLOPs, comma-separated (default: the scale's)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="targets to run, comma-separated")
    parser.add_argument("--arms", default=",".join(ARMS), help="rows to run, comma-separated")
    parser.add_argument("--epochs", type=int, help="the supernet's epochs over the corpus (default: the scale's; "
                                                   "classic trains as many steps)")
    parser.add_argument("--extra-share", type=float, help="the rows with select-data fine-tune with finetune "
                        "--extra-share (the selected images' share of an epoch; default: every image once)")
    parser.add_argument("--pool", choices=POOLS, default="corpus", help="select-data selects from the corpus the "
                        "supernet trained on (GAIA's setting), new images of its styles (fresh), or new images of its "
                        "classes in the target's style (styled)")
    parser.add_argument("--extra-stage", action="store_true", help="the rows with select-data fine-tune in two "
                        "commands: with the selected images for half of the steps, then on the target alone")
    parser.add_argument("--target-images", type=int, help="training images per target (default: the scale's; "
                        "10 is GAIA's data-scarce setting for select-data, Table 6)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp folder)")
    args = parser.parse_args()
    args.scale_name = "quick" if args.quick else args.scale
    cfg = dict(SCALES[args.scale_name])
    cfg["seeds"] = args.seeds or cfg["seeds"]
    cfg["epochs"] = args.epochs or cfg["epochs"]
    if args.target_images is not None:
        if not cfg["ft_batch"] <= args.target_images <= 1000:
            parser.error(f"--target-images takes {cfg['ft_batch']} to 1000 (at least a fine-tuning batch)")
        cfg["target_train"] = args.target_images
    if args.extra_stage and args.extra_share:
        parser.error("--extra-stage and --extra-share are two ways to use the selected images: give one")
    if args.budgets:
        cfg["budgets"] = [float(x) for x in args.budgets.split(",")]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if any(t not in TARGETS for t in targets) or any(a not in ARMS for a in arms):
        parser.error(f"--targets takes {', '.join(TARGETS)}; --arms takes {', '.join(ARMS)}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_transfer."))
    for sub in ("rows", "ft"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    bench = Bench(args, cfg, work)
    bench.data()
    budgets = bench.budgets()
    print(f"upstream: {', '.join(f'{s} ({c})' for s, c in UPSTREAM.items())}, {cfg['upstream']} images each at "
          f"{cfg['size']} px; space {cfg['space']}, {cfg['epochs']} epochs; targets: "
          + "; ".join(f"{t} ({TARGETS[t][0]}: {TARGETS[t][1]})" for t in targets)
          + f", {cfg['target_train']} train / {cfg['target_val']} val images; budgets {budgets} detector GFLOPs; "
          f"{cfg['seeds']} seeds; device {args.device}, {os.environ.get('OMP_NUM_THREADS', 'all')} threads; in {work}",
          flush=True)
    # what a kept run must share with this one (seeds and budgets only say which runs to make)
    key = {**{k: v for k, v in cfg.items() if k not in ("seeds", "budgets")}, "device": args.device}
    table: dict[str, dict] = {}
    for budget in budgets:
        for target in targets:
            for arm in arms:
                runs = []
                for seed in range(cfg["seeds"]):
                    share, pool, staged = bench.variant(arm)
                    row_key = {**key, **({"extra_share": share} if share else {}), **({"pool": pool} if pool else {}),
                               **({"extra_stage": True} if staged else {})}
                    saved = work / "rows" / (f"{bench.tname(target)}.{budget}.{arm.replace(' ', '')}"
                                             + bench.suffix(share, pool, staged) + f".seed{seed}.json")
                    if saved.is_file() and json.loads(saved.read_text())["config"] == row_key:
                        run = json.loads(saved.read_text())["run"]
                    else:
                        start = time.perf_counter()
                        run = {**bench.arm(arm, target, budget, seed), "seconds": 0}
                        run["seconds"] = round(time.perf_counter() - start)
                        # equal budget: every row's arch within it, by the measure search keeps to
                        run["gflops"] = round(bench.gflops(run["arch"]), 4)
                        assert run["gflops"] <= budget or run["arch"] == bench.smallest(), \
                            f"{arm}: {run['arch']} costs {run['gflops']} GMACs, over the budget {budget}"
                        saved.write_text(json.dumps({"config": row_key, "run": run}, indent=1))
                    runs.append(run)
                aps = [r["AP"] for r in runs]
                row = {"AP": round(float(np.mean(aps)), 1), "min": round(min(aps), 1), "max": round(max(aps), 1),
                       "per_seed": [round(a, 1) for a in aps], "archs": [r["arch"] for r in runs],
                       "seconds": sum(r["seconds"] for r in runs)}
                table.setdefault(f"{budget}", {}).setdefault(target, {})[arm] = row
                print(f"  budget {budget:<7} {target:<12} {arm:<15} AP {row['AP']:5.1f}  ({row['min']:.1f}-{row['max']:.1f}"
                      f" over {len(row['per_seed'])} seeds)  {row['seconds']} s", flush=True)
    checks = {}
    for budget, by_target in table.items():
        for target, rows in by_target.items():
            ap = {a: r["AP"] for a, r in rows.items()}
            if {"gaia", "classic"} <= set(ap):
                checks[f"{budget} {target}: gaia >= classic + 2"] = ap["gaia"] >= ap["classic"] + 2
            if {"classic", "scratch"} <= set(ap):
                checks[f"{budget} {target}: classic >= scratch + 20"] = ap["classic"] >= ap["scratch"] + 20
            if target == UNSEEN_STYLE_TARGET and {"gaia", "gaia -select"} <= set(ap):
                pool = "" if args.pool == "corpus" else f" (from the {args.pool} pool)"
                checks[f"{budget} {target}: select-data adds AP{pool}"] = ap["gaia"] > ap["gaia -select"]
            for part in ("rank", "select", "montage"):
                if {"gaia", f"gaia -{part}"} <= set(ap):
                    print(f"  budget {budget} {target}: {part} adds {ap['gaia'] - ap[f'gaia -{part}']:+.1f} AP", flush=True)
            if {"classic", "classic +select"} <= set(ap):
                print(f"  budget {budget} {target}: gaia's selection adds {ap['classic +select'] - ap['classic']:+.1f} AP"
                      " to classic", flush=True)
    for name, ok in checks.items():
        print(f"  target {name}: {'met' if ok else 'NOT met'}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"config": {**key, "extra_share": args.extra_share, "pool": args.pool,
                                                    "extra_stage": args.extra_stage}, "budgets": budgets, "table": table, "checks": checks},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
