"""Startup cost of `gaia --help` against a bare interpreter, measured side by side.

`gaia --help` and shell completion must stay light (no torch, gensim or h5py). This runs each command N
times, alternating, and prints the medians and the ratio to `python -c pass`. `import torch` is timed too,
to show what the lazy imports save.

    python benchmarks/bench_startup.py [-n 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs of each command")
    args = parser.parse_args()
    gaia = shutil.which("gaia", path=str(Path(sys.executable).parent)) or shutil.which("gaia")
    gaia_cmd = [gaia] if gaia else [sys.executable, "-m", "gaia_cli"]
    env = {**os.environ, "NO_COLOR": "1"}
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "gaia --help": [*gaia_cmd, "--help"],
        "gaia completion": [*gaia_cmd],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    }
    completion_env = {**env, "_GAIA_COMPLETE": "complete_bash", "COMP_WORDS": "gaia in", "COMP_CWORD": "1"}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for name, cmd in commands.items():  # warm the file cache once
        _time(cmd, completion_env if name == "gaia completion" else env)
    for _ in range(args.n):
        for name, cmd in commands.items():
            times[name].append(_time(cmd, completion_env if name == "gaia completion" else env))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':28s} {'median ms':>10s} {'ratio to python -c pass':>24s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:28s} {median * 1000:10.1f} {median / base:24.2f}")
    help_extra = statistics.median(times["gaia --help"]) - base
    torch_extra = statistics.median(times["python -c 'import torch'"]) - base
    print(f"\ngaia --help costs {help_extra * 1000:.0f} ms over a bare interpreter; "
          f"importing torch alone would cost {torch_extra * 1000:.0f} ms.")


if __name__ == "__main__":
    main()
