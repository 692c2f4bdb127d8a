"""Provenance guards: weights are hash-checked before loading, missing ones fail in one line,
only `weights fetch` downloads, metric ids keep columns apart, and no metric touches the network."""

from __future__ import annotations

import hashlib
import http.client
import io
import socket
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

import evaluation
from benchmarks.cli import main
from evaluation import EvaluationError, MetricIdMismatch, WeightsError, require_same_metric
from evaluation.extractors import get_extractor_spec, load_extractor, register_extractor
from evaluation.weights import WeightsFile, fetch, file_hash

REAL_WEIGHT_EXTRACTORS = [s.name for s in evaluation.list_extractors() if s.weights is not None]
# Weights that must come from elsewhere; the landscape network's ship in the package (its missing
# and wrong-file cases are in test_eval_landscape.py).
DOWNLOADED_WEIGHT_EXTRACTORS = [
    s.name for s in evaluation.list_extractors() if s.weights and s.weights.packaged is None
]


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """An empty $NUWA_WEIGHTS_DIR and no other place to look."""
    monkeypatch.setenv("NUWA_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("NUWA_WEIGHTS_LIBRARY_CACHES", "0")
    monkeypatch.setattr("evaluation.weights.DEFAULT_WEIGHTS_DIR", tmp_path / "default")
    return tmp_path / "weights"


@pytest.mark.parametrize("name", DOWNLOADED_WEIGHT_EXTRACTORS)
def test_missing_weights_fail_in_one_line_saying_where_to_put_them(name, weights_dir) -> None:
    with pytest.raises(WeightsError) as error:
        load_extractor(name)
    message = str(error.value)
    assert "\n" not in message
    filename = get_extractor_spec(name).weights.filename
    assert f"put it at {weights_dir / filename}" in message and "nuwa-eval weights fetch" in message


@pytest.mark.parametrize("name", REAL_WEIGHT_EXTRACTORS)
def test_wrong_hash_refuses_to_load(name, weights_dir, monkeypatch) -> None:
    def must_not_run(*args, **kwargs):
        raise AssertionError("a weights file was deserialised before its hash was checked")

    monkeypatch.setattr(torch, "load", must_not_run)
    monkeypatch.setattr(torch.jit, "load", must_not_run)
    weights_dir.mkdir()
    (weights_dir / get_extractor_spec(name).weights.filename).write_bytes(b"not the real weights")
    with pytest.raises(WeightsError, match="refusing to load"):
        load_extractor(name)


def test_hashes_sha256_and_git_blob(tmp_path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights \x00\x01" * 1000)
    assert file_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    git = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True)
    if git.returncode != 0:
        pytest.skip(f"git is not available to cross-check: {git.stderr.strip()}")
    assert file_hash(path, "git-blob-sha1") == git.stdout.strip()
    record = WeightsFile("w.bin", None, None, (), "test", "test", git_blob_sha1=git.stdout.strip())
    record.verify(path)  # no error


class _FakeResponse(io.BytesIO):
    headers = {"Content-Length": "0"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_fetch_verifies_and_writes_atomically(tmp_path, monkeypatch) -> None:
    payload = b"pretend weights" * 100
    good = WeightsFile(
        "w.pt", hashlib.sha256(payload).hexdigest(), None, ("https://example.invalid/w",), "x", "x"
    )
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _FakeResponse(payload))
    assert fetch(good, tmp_path).read_bytes() == payload
    bad = WeightsFile("v.pt", "0" * 64, None, ("https://example.invalid/v",), "x", "x")
    with pytest.raises(WeightsError, match="wrong hash"):
        fetch(bad, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pt"]  # no partial file left


def test_cli_weights_list_and_fetch_errors(weights_dir, monkeypatch, capsys) -> None:
    assert main(["weights", "list"]) == 0
    listed = capsys.readouterr().out
    assert "inception-2015-12-05.pt  [missing]" in listed and "f58cb9b6ec32" in listed
    assert main(["weights", "fetch", "nope.pt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown weights 'nope.pt'" in err

    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["weights", "fetch", "inception-2015-12-05.pt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not fetch inception-2015-12-05.pt" in err


def test_columns_never_mix_metric_ids() -> None:
    fid = evaluation.FID(evaluation.SURROGATE_INCEPTION).metric_id
    paper = evaluation.FID(evaluation.PAPER_INCEPTION).metric_id
    assert require_same_metric([fid, fid.digest]) == fid.digest
    with pytest.raises(MetricIdMismatch, match="cannot share a column"):
        require_same_metric([fid, paper])
    with pytest.raises(MetricIdMismatch):
        require_same_metric([])
    assert paper.paper_comparable and not fid.paper_comparable
    assert evaluation.FID(evaluation.CLEANFID_INCEPTION).metric_id != paper  # two packagings
    assert not evaluation.KID(evaluation.PAPER_INCEPTION).metric_id.paper_comparable  # not in paper
    assert evaluation.FVD(evaluation.PAPER_I3D).metric_id.paper_comparable
    assert not evaluation.FVD(evaluation.PAPER_I3D, clips=256).metric_id.paper_comparable


def test_registry_entries_are_immutable_and_surrogates_say_so() -> None:
    spec = get_extractor_spec(evaluation.SURROGATE_INCEPTION)
    with pytest.raises(EvaluationError, match="already registered"):
        register_extractor(spec)
    with pytest.raises(EvaluationError, match="say so in the name"):
        register_extractor(type(spec)(**{**spec.__dict__, "name": "inception_v3.seeded@9"}))
    with pytest.raises(EvaluationError, match="needs output 'logits_unbiased'"):
        evaluation.InceptionScore(evaluation.CLEANFID_INCEPTION)


def test_metric_path_never_opens_a_connection(weights_dir, monkeypatch) -> None:
    attempts = []

    def record(name):
        def refuse(*args, **kwargs):
            attempts.append(name)
            raise OSError(f"network disabled in this test ({name})")

        return refuse

    monkeypatch.setattr(socket.socket, "connect", record("socket.connect"))
    monkeypatch.setattr(socket, "create_connection", record("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", record("socket.getaddrinfo"))
    monkeypatch.setattr(urllib.request, "urlopen", record("urlopen"))
    monkeypatch.setattr(http.client.HTTPConnection, "connect", record("http.connect"))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    for name in DOWNLOADED_WEIGHT_EXTRACTORS:
        with pytest.raises(WeightsError):
            load_extractor(name)
    kid = evaluation.KID(evaluation.SURROGATE_INCEPTION, progress=False, num_subsets=2)
    kid.update(images[:2], real=False)
    kid.update(images[2:], real=True)
    with pytest.warns(UserWarning, match="subset size"):
        value = kid.compute().value
        expected = evaluation.kernel_inception_distance(
            kid.extract(images[:2]), kid.extract(images[2:]), num_subsets=2
        )[0]
    assert value == pytest.approx(expected, rel=1e-9)
    clip = evaluation.CLIPSim(evaluation.SURROGATE_CLIP, progress=False)
    captions = ["a lake at dusk", "snowy peaks"]
    clip.update(images[:2], captions)
    preprocess = evaluation.preprocess.get_preprocess("openai-clip-224")
    with torch.inference_mode():
        embedded = clip.model(torch.stack([preprocess(image) for image in images[:2]]))
        cosine = torch.nn.functional.cosine_similarity(
            embedded["image_embed"].double(), clip.model.embed_text(captions).double()
        )
    assert clip.compute().value == pytest.approx(float(cosine.mean()), rel=1e-5)
    assert attempts == []
