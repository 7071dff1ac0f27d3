"""`--devices`: one worker process per device, each taking the next candidate as it finishes one.

Workers are started once per ranking with torch.multiprocessing's `spawn` (a fresh interpreter: no CUDA state
inherited), load the supernet and the target task once, and serve every stage; each result comes back to the
parent, which alone writes the journal. A worker's failure ends the run with its one-line error (a bad input
stays exit 2). Multi-GPU use is the point; on the CPU (`--devices cpu,cpu`) it runs the same code, which is
how it is tested.
"""

from __future__ import annotations

import queue as queue_module
from typing import Any, Callable

from gaia_cli import console
from gaia_cli.devices import resolve as resolve_device
from gaia_cli.errors import BadInput, GaiaError, RunFailure
from gaia_cli.ranking.stages import Target, evaluate_candidate


def _worker(device: str, settings, tasks, results, quiet: bool, verbose: int) -> None:
    import time

    import torch

    console.set_verbosity(verbose=verbose, quiet=True if quiet else None)
    if device == "cpu":
        torch.set_num_threads(1)
    try:
        target = Target(settings, resolve_device(device))
        while True:
            task = tasks.get()
            if task is None:
                return
            stage, schedule, cand = task
            start = time.perf_counter()
            metrics = evaluate_candidate(target, stage, cand, schedule)
            results.put(("done", cand, metrics, time.perf_counter() - start))
    except GaiaError as exc:
        results.put(("error", exc.exit_code, str(exc)))
    except KeyboardInterrupt:
        results.put(("error", 130, "interrupted"))
    except BaseException as exc:  # reported in one line by the parent
        results.put(("error", 1, f"{type(exc).__name__}: {exc}"))


class Pool:
    """One worker process per device, started on first use and kept for every stage."""

    def __init__(self, settings, devices: list[str]):
        self.settings, self.devices = settings, devices
        self.procs: list[Any] = []

    def _start(self) -> None:
        import torch.multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.tasks, self.results = ctx.Queue(), ctx.Queue()
        self.procs = [ctx.Process(target=_worker, args=(d, self.settings, self.tasks, self.results, console.quiet(),
                                                        console.verbose()), daemon=True) for d in self.devices]
        for p in self.procs:
            p.start()

    def run(self, stage: str, schedule: str, todo: list, on_done: Callable[[Any, dict, float, int], None]) -> None:
        """Run `todo`; `on_done(candidate, metrics, seconds, count)` as each finishes, in the parent."""
        if not self.procs:
            self._start()
        for cand in todo:
            self.tasks.put((stage, schedule, cand))
        console.info(f"{stage}: {len(todo)} candidate(s) on {len(self.devices)} workers ({', '.join(self.devices)})")
        done = 0
        while done < len(todo):
            try:
                message = self.results.get(timeout=1.0)
            except queue_module.Empty:
                dead = [d for p, d in zip(self.procs, self.devices) if not p.is_alive()]
                if dead:
                    raise RunFailure(f"the worker on {', '.join(dead)} ended without its results "
                                     f"(exit {[p.exitcode for p in self.procs]})") from None
                continue
            if message[0] == "error":
                _, code, text = message
                if code == 130:
                    raise KeyboardInterrupt()
                raise (BadInput if code == 2 else RunFailure)(text)
            _, cand, metrics, seconds = message
            done += 1
            on_done(cand, metrics, seconds, done)

    def close(self) -> None:
        if not self.procs:
            return
        for _ in self.procs:
            self.tasks.put(None)
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
        self.procs = []
