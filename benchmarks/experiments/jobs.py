"""Run the experiments' steps as child processes: one at a time with output to the terminal, or
several at once with the CPU's threads split between them and each one's output in its log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.tasks import TaskError


def script(name: str) -> str:
    """A console script of this installation (beside the running Python), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


def call(command: list[str]) -> None:
    """Run ``command`` with its output on the terminal; a failure raises :class:`TaskError`."""
    print("$ " + " ".join(command), flush=True)
    if subprocess.run(command).returncode != 0:
        raise TaskError(f"step failed: {' '.join(command[:3])} ... (see its output above)")


def run_parallel(commands: list[tuple[list[str], Path]], jobs: int) -> None:
    """Run ``(command, log file)`` pairs ``jobs`` at a time, the CPU's threads split evenly
    between them (one job: its output goes to the terminal, not the log). The first failure
    stops the others (each resumes from its last checkpoint on the next call)."""
    if jobs == 1:
        for command, _ in commands:
            call(command)
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))}
    pending, running = list(commands), []
    try:
        while pending or running:
            while pending and len(running) < jobs:
                command, log = pending.pop(0)
                log.parent.mkdir(parents=True, exist_ok=True)
                print(f"$ {' '.join(command)}  > {log}", flush=True)
                with open(log, "ab") as sink:
                    process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
                running.append((command, log, process))
            time.sleep(1)
            for entry in list(running):
                command, log, process = entry
                if process.poll() is None:
                    continue
                running.remove(entry)
                if process.returncode != 0:
                    raise TaskError(f"step failed: {' '.join(command[:4])} ... (see {log})")
                print(f"done: {log.parent}", flush=True)
    finally:
        for _, _, process in running:
            process.terminate()
