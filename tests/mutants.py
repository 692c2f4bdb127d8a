"""Semantic mutation testing: does the suite notice a wrong number?

    python tests/mutants.py                      # every mutant against the current tests
    python tests/mutants.py --tests-at 0de641c   # the same mutants against an older suite
    python tests/mutants.py --only kid_sign fvd_last_frames
    python tests/mutants.py --tests tests/test_harness_semantics.py   # does this file alone catch?

Each mutant is one plausible mistake in the code that computes or routes a number (a reduction,
a split count, a sign, which half the model is given). The source tree is copied to a temporary
folder, the mutant is applied there, and the tests that guard that code run on the copy; the
mutant is *caught* when they fail. Not part of CI (about 15 minutes on 2 cores); the score and
the survivors, with why each is harmless if it is, belong in the notes of the change that ran it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRIC_TESTS = ("tests/test_eval_*.py",)
HARNESS_TESTS = ("tests/test_harness_run.py", "tests/test_harness_tasks.py",
                 "tests/test_harness_semantics.py", "tests/test_harness_regress.py")  # fmt: skip
MODEL_TESTS = ("tests/test_model_plan.py", "tests/test_model_exactness.py")
WAVE_TESTS = ("tests/test_wavefront.py", "tests/test_model_exactness.py")


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    before: str  # must occur exactly once in the file
    after: str
    tests: tuple[str, ...]


MUTANTS = [
    Mutant("kid_sign", "evaluation/kid.py", 'return self._result(mean, {"std"',
           'return self._result(-mean, {"std"', METRIC_TESTS),
    Mutant("kid_kernel_degree", "evaluation/kid.py", "degree: int = 3", "degree: int = 2",
           METRIC_TESTS),
    Mutant("block_fid_median", "evaluation/block_fid.py",
           "value = float(np.mean(list(per_position.values())))",
           "value = float(np.median(list(per_position.values())))", METRIC_TESTS),
    Mutant("block_fid_shift", "evaluation/block_fid.py", '[("s", block // 2)]',
           '[("s", block // 4)]', METRIC_TESTS),
    Mutant("swd_w2_squared", "evaluation/swd.py", "np.abs(proj_a - proj_b).mean()",
           "((proj_a - proj_b) ** 2).mean()", METRIC_TESTS),
    Mutant("fid_generated_twice", "evaluation/fid.py",
           'fid_from_stats(stats["generated"][WHOLE], stats["real"][WHOLE])',
           'fid_from_stats(stats["generated"][WHOLE], stats["generated"][WHOLE])', METRIC_TESTS),
    Mutant("is_one_split", "evaluation/inception_score.py",
           "mean, std = inception_score(logits, self.splits, self.seed)",
           "mean, std = inception_score(logits, 1, self.seed)", METRIC_TESTS),
    Mutant("fvd_last_frames", "evaluation/fvd.py", "super().views(clip[: self.frames])",
           "super().views(clip[-self.frames :])", METRIC_TESTS),
    Mutant("frechet_trace_term", "evaluation/frechet.py", "- 2.0 * trace_sqrt", "- trace_sqrt",
           METRIC_TESTS),
    Mutant("motion_fd_max_change", "evaluation/motion_fd.py",
           "np.log(EPSILON + change.mean(axis=1))", "np.log(EPSILON + change.max(axis=1))",
           METRIC_TESTS),
    Mutant("clip_sim_unnormalised_text", "evaluation/clip_sim.py",
           "text = torch.nn.functional.normalize(torch.cat(text_embeds).double(), dim=1)",
           "text = torch.cat(text_embeds).double()", METRIC_TESTS),
    Mutant("outpaint_given_the_generated_half", "benchmarks/harness/generate.py",
           "given, _ = outpaint_regions(config.direction, height, width)",
           "_, given = outpaint_regions(config.direction, height, width)", HARNESS_TESTS),
    Mutant("measure_whole_canvas", "benchmarks/harness/config.py",
           "return outpaint_regions(config.direction, config.height, config.width)[1]",
           "return None", HARNESS_TESTS),
    Mutant("t2i_drops_captions", "benchmarks/harness/generate.py",
           "pipeline.text_to_image(texts, width, height, **opts)",
           'pipeline.text_to_image([""] * len(texts), width, height, **opts)', HARNESS_TESTS),
    Mutant("one_seed_for_every_batch", "benchmarks/harness/generate.py",
           'text = f"{seed}/{stream}/{index}".encode()', 'text = f"{seed}/{stream}/0".encode()',
           HARNESS_TESTS),
    Mutant("regress_tolerance_ignores_relative", "leaderboard/regress.py",
           "return max(self.absolute, self.relative * abs(accepted))",
           "return self.absolute", ("tests/test_leaderboard_regress.py",) + HARNESS_TESTS),
    Mutant("adc_emb_columns_mirrored", "nuwa/adc.py", "+ dcol + self.w", "+ self.w - dcol",
           MODEL_TESTS),
    Mutant("plan_self_context", "nuwa/adc.py", "if q_step is not None and q_step < step:",
           "if q_step is not None and q_step <= step:", MODEL_TESTS),
    Mutant("attention_not_causal", "nuwa/model/masks.py", "inside = inside.tril()",
           "inside = inside", MODEL_TESTS),
    Mutant("wave_beside_its_context", "nuwa/schedule.py",
           "depth.append(1 + max((depth[s] for s in context_steps if s >= 0), default=-1))",
           "depth.append(max((depth[s] for s in context_steps if s >= 0), default=0))",
           WAVE_TESTS),
    Mutant("one_stream_for_all_patches", "nuwa/sampling.py",
           "np.random.SeedSequence([seed, patch])", "np.random.SeedSequence([seed])", WAVE_TESTS),
    Mutant("context_padded_on_the_right", "nuwa/ncp.py",
           "padded = [[slots[0]] * (width - len(c)) + c for c in contexts]",
           "padded = [c + [slots[0]] * (width - len(c)) for c in contexts]", WAVE_TESTS),
]  # fmt: skip


def copy_tree(tests_at: str | None) -> Path:
    """The tracked files of the working tree (tests from ``tests_at`` if given) in a temp folder."""
    root = Path(tempfile.mkdtemp(prefix="mutants-"))
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, root / name)
    if tests_at:
        kept = ROOT / "tests" / "mutants.py"
        shutil.rmtree(root / "tests")
        archive = subprocess.run(["git", "archive", tests_at, "tests"], cwd=ROOT,
                                 capture_output=True, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        shutil.copy2(kept, root / "tests" / "mutants.py")
    return root


def pytest(root: Path, tests: list[str], timeout_s: int, *extra: str) -> tuple[int, list[str]]:
    """(exit status, FAILED lines) of pytest on ``tests`` inside the copy at ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, *tests],
        cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
    return result.returncode, [
        line for line in result.stdout.splitlines() if line.startswith("FAILED")
    ]


def failing_unmutated(root: Path, timeout_s: int) -> list[str]:
    """Tests that fail in the copy without any mutant (e.g. ones that read git history, which
    the copy has not): deselected from every run, so they cannot pass for a caught mutant."""
    tests = sorted({f for m in MUTANTS for p in m.tests for f in glob.glob(str(root / p))})
    _, failed = pytest(root, tests, timeout_s)
    return [line.split()[1] for line in failed]


def run_mutant(root: Path, mutant: Mutant, timeout_s: int, deselect: list[str]) -> dict:
    path = root / mutant.file
    original = path.read_text(encoding="utf-8")
    if original.count(mutant.before) != 1:
        return {"name": mutant.name, "status": "not applied (text not found exactly once)"}
    path.write_text(original.replace(mutant.before, mutant.after), encoding="utf-8")
    tests = sorted({f for pattern in mutant.tests for f in glob.glob(str(root / pattern))})
    skip = [arg for node in deselect for arg in ("--deselect", node)]
    start = time.perf_counter()
    try:
        status, failed = pytest(root, tests, timeout_s, "-x", *skip)
        status = "caught" if status != 0 else "SURVIVED"
    except subprocess.TimeoutExpired:
        status, failed = "caught (timeout)", []
    finally:
        path.write_text(original, encoding="utf-8")
    return {
        "name": mutant.name,
        "status": status,
        "seconds": round(time.perf_counter() - start),
        "caught_by": failed[:1],
        "tests": [str(Path(t).relative_to(root)) for t in tests],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests-at", help="take tests/ from this git revision")
    parser.add_argument("--only", nargs="*", help="mutant names")
    parser.add_argument("--tests", nargs="*", help="run these test files instead of each mutant's")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per mutant")
    args = parser.parse_args()
    root = copy_tree(args.tests_at)
    results = []
    try:
        deselect = failing_unmutated(root, args.timeout)
        print(f"failing without a mutant (deselected): {deselect or 'none'}", flush=True)
        for mutant in MUTANTS:
            if args.only and mutant.name not in args.only:
                continue
            if args.tests:
                mutant = replace(mutant, tests=tuple(args.tests))
            results.append(run_mutant(root, mutant, args.timeout, deselect))
            row = results[-1]
            print(f"{row['status']:>9}  {mutant.name}  {row.get('seconds', '')} s  "
                  f"{' '.join(row.get('caught_by', []))}", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    caught = sum(row["status"].startswith("caught") for row in results)
    print(f"mutation score: {caught}/{len(results)} caught"
          + (f" (tests from {args.tests_at})" if args.tests_at else ""))  # fmt: skip
    if args.out:
        summary = {"tests_at": args.tests_at, "deselected": deselect, "results": results}
        args.out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
