"""Cached work is verified when it is reused: generated samples, real items, features, metric
values and finished results; killed writes leave no debris; identical runs do the work once;
the bundle is checked against hashes pinned in code. Plus the reporting of OS errors."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from harness_fakes import run_fake
from PIL import Image

import nuwa.bundle
from benchmarks.harness.cache import SampleStore, ValueCache
from benchmarks.tasks import TaskError
from evaluation.cache import CacheChangedWarning, FeatureCache
from leaderboard import load_table
from nuwa.bundle import PINNED_SHA256, bundle_files, read_sha256sums
from nuwa.checkpoint import CheckpointError
from nuwa.errors import UserError, run_reporting
from nuwa.io import atomic_write_bytes

BLOCK_ONLY = ["metrics=[block_fid,block_fid_pooled]"]


def blank(path) -> None:
    """Overwrite a stored PNG with a black image of its size, as an edit on disk would."""
    pixels = np.asarray(Image.open(path))
    Image.fromarray(np.zeros_like(pixels)).save(path)


def test_a_changed_sample_makes_its_batch_count_as_unfinished(tmp_path):
    store = SampleStore(tmp_path)
    samples = [np.full((8, 8, 3), value, np.uint8) for value in (10, 20)]
    refs = store.save("ab" * 32, samples, {})
    assert store.lookup("ab" * 32) == refs
    blank(refs[1].path)
    with pytest.warns(CacheChangedWarning, match="is missing or changed since it was made"):
        assert store.lookup("ab" * 32) is None


def test_changed_features_and_values_are_recomputed_not_reused(tmp_path):
    features = FeatureCache(tmp_path / "features")
    features.put("cd" * 32, np.ones((3, 4), np.float32))
    np.testing.assert_array_equal(features.get("cd" * 32), np.ones((3, 4), np.float32))
    path = features._path("cd" * 32)
    with np.load(path) as stored:
        recorded = stored["sha256"]
    np.savez(path, features=np.zeros((3, 4), np.float32), sha256=recorded)  # edited in place
    with pytest.warns(CacheChangedWarning):
        assert features.get("cd" * 32) is None
    values = ValueCache(tmp_path / "values")
    values.put("ef", {"value": 1.5})
    assert values.get("ef") == {"value": 1.5}
    record = json.loads((tmp_path / "values" / "ef.json").read_text())
    record["value"]["value"] = 0.1
    (tmp_path / "values" / "ef.json").write_text(json.dumps(record))
    with pytest.warns(CacheChangedWarning):
        assert values.get("ef") is None


def test_a_sample_edited_on_disk_is_generated_again_and_the_number_stays(tmp_path):
    first, _ = run_fake("lhqc_outpaint_up", tmp_path, n=4, batch_size=2, table=None,
                        overrides=BLOCK_ONLY)  # fmt: skip
    shutil.rmtree(tmp_path / "runs")  # measure again from the caches
    blank(next((tmp_path / "cache" / "samples").rglob("000.png")))
    with pytest.warns(CacheChangedWarning):
        again, pipeline = run_fake("lhqc_outpaint_up", tmp_path, n=4, batch_size=2, table=None,
                                   overrides=BLOCK_ONLY)  # fmt: skip
    assert again.counts["batches_generated"] == 1 and len(pipeline.calls) == 1
    assert again.results["samples_sha256"] == first.results["samples_sha256"]
    assert [m["value"] for m in again.results["metrics"]] == [
        m["value"] for m in first.results["metrics"]
    ]


def test_an_edited_results_file_is_refused_not_reused(tmp_path):
    first, _ = run_fake("lhqc_outpaint_up", tmp_path, n=2, batch_size=2, table=None,
                        overrides=BLOCK_ONLY)  # fmt: skip
    again, pipeline = run_fake("lhqc_outpaint_up", tmp_path, n=2, batch_size=2, table=None,
                               overrides=BLOCK_ONLY)  # fmt: skip
    assert again.reused and pipeline.calls == []
    text = first.path.read_text().replace('"value": ', '"value": 1', 1)
    first.path.write_text(text)
    with pytest.raises(TaskError, match="is not the file this run wrote .* delete the folder"):
        run_fake("lhqc_outpaint_up", tmp_path, n=2, batch_size=2, table=None,
                 overrides=BLOCK_ONLY)  # fmt: skip


def test_two_identical_runs_sharing_out_do_the_work_once(tmp_path):
    table = tmp_path / "table.jsonl"
    outcomes = []

    def one_run():
        outcomes.append(run_fake("lhqc_outpaint_up", tmp_path / "out", n=4, batch_size=2,
                                 table=table, overrides=BLOCK_ONLY, delay_s=0.3))  # fmt: skip

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcome.reused for outcome, _ in outcomes) == [False, True]
    assert sum(len(pipeline.calls) for _, pipeline in outcomes) == 2  # 2 batches, once
    rows = load_table(table)
    assert len(rows) == len({(row.metric, row.value) for row in rows}) == 2  # no duplicates


def test_a_killed_atomic_write_leaves_no_temporary_file_once_written_again(tmp_path):
    script = (
        "import os\nfrom nuwa.io import atomic_open\n"
        f"with atomic_open({str(tmp_path / 'x.bin')!r}) as f:\n"
        "    f.write(b'partial'); f.flush(); os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # kill -9 debris
    atomic_write_bytes(tmp_path / "x.bin", b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


def test_the_bundle_is_checked_against_hashes_pinned_in_code(tmp_path, monkeypatch):
    sums = read_sha256sums(nuwa.bundle.BUNDLE_DIR / "SHA256SUMS")
    assert {name: sums[name] for name in PINNED_SHA256} == PINNED_SHA256
    copy = tmp_path / "bundled"
    shutil.copytree(nuwa.bundle.BUNDLE_DIR, copy)
    tokenizer = copy / "tokenizer.safetensors"
    tokenizer.write_bytes(tokenizer.read_bytes() + b"\0")  # replaced, and SHA256SUMS updated
    lines = [
        f"{nuwa.io.sha256_file(tokenizer)}  tokenizer.safetensors" if "tokenizer" in line else line
        for line in (copy / "SHA256SUMS").read_text().splitlines()
    ]
    (copy / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    bundle_files(copy)  # a user's own bundle folder is held to its SHA256SUMS only
    monkeypatch.setattr(nuwa.bundle, "BUNDLE_DIR", copy.resolve())
    with pytest.raises(CheckpointError, match="this version of nuwa-infinity shipped"):
        bundle_files()


def test_a_malformed_sha256sums_names_the_file_and_line(tmp_path):
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  a.bin\nnot a line\n")
    with pytest.raises(CheckpointError, match=r"SHA256SUMS line 2 is not '<sha256>  <file name>'"):
        read_sha256sums(tmp_path / "SHA256SUMS")
    (tmp_path / "SHA256SUMS").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CheckpointError, match="SHA256SUMS is not a SHA256SUMS file"):
        read_sha256sums(tmp_path / "SHA256SUMS")


def raising(error: BaseException):
    def work():
        raise error

    return work


@pytest.mark.parametrize(
    "error,line",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/out/x.png"),
         "prog: error: /out/x.png: No space left on device (free some space or write somewhere "
         "else)"),
        (PermissionError(errno.EACCES, "Permission denied", "/out"),
         "prog: error: /out: Permission denied (check the permissions, or write somewhere else)"),
        (MemoryError("Unable to allocate 2.55 TiB"),
         "prog: error: out of memory (Unable to allocate 2.55 TiB); ask for less"),
        (UserError("first line\nsecond line"), "prog: error: first line"),
    ],
)  # fmt: skip
def test_errors_print_as_one_line_that_names_the_file(error, line, capsys):
    assert run_reporting("prog", raising(error)) == 2
    assert capsys.readouterr().err.splitlines()[0].startswith(line)


def test_interrupts_and_warnings(capsys):
    assert run_reporting("prog", raising(KeyboardInterrupt())) == 130

    def warn():
        warnings.warn("first\nsecond", UserWarning, stacklevel=1)
        return 0

    assert run_reporting("prog", warn) == 0
    assert capsys.readouterr().err.splitlines()[-1] == "prog: warning: first"
    with pytest.raises(ValueError):  # a bug, not a user error: its traceback is kept
        run_reporting("prog", raising(ValueError("bug")))
