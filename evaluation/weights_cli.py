"""`nuwa-eval weights list` and `nuwa-eval weights fetch NAME`: what is present, what is missing,
where to put it, and the one command that downloads (and verifies) a weights file."""

from __future__ import annotations

import argparse

from evaluation.errors import WeightsError
from evaluation.extractors import all_weights, list_extractors
from evaluation.weights import WEIGHTS_ENV, fetch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Feature-extractor weights: `list` what is present or missing, `fetch NAME` one file."""
    actions = parser.add_subparsers(dest="weights_action", required=True)
    actions.add_parser(
        "list", help="show every weights file: present or missing, hash, where to put it"
    )
    fetch_parser = actions.add_parser("fetch", help="download one weights file and verify its hash")
    fetch_parser.add_argument(
        "name", help="a file name from `nuwa-eval weights list`, or the extractor that uses it"
    )


def _status(record) -> tuple[str, str]:
    path = record.find()
    if path is None:
        return "missing", str(record.candidates()[0])
    try:
        record.verify(path)
    except WeightsError:
        return "BAD HASH", str(path)
    return "ok", str(path)


def run(args: argparse.Namespace) -> int:
    """Execute the chosen action; returns the exit code."""
    records = {r.filename: r for r in all_weights()}
    if args.weights_action == "fetch":
        by_extractor = {s.name: s.weights for s in list_extractors() if s.weights}
        by_extractor.update({name.split("@")[0]: w for name, w in list(by_extractor.items())})
        record = records.get(args.name) or by_extractor.get(args.name)
        if record is None:
            raise WeightsError(
                f"unknown weights {args.name!r}; give a file name ({', '.join(sorted(records))}) "
                f"or an extractor name ({', '.join(sorted(k for k in by_extractor if '@' in k))})"
            )
        path = fetch(record)
        print(f"{record.filename}: ok ({record.expected}) at {path}")
        return 0
    users = {
        name: [s.name for s in list_extractors() if s.weights and s.weights.filename == name]
        for name in records
    }
    print(
        f"Weights are looked up in ${WEIGHTS_ENV}, ~/.cache/nuwa-infinity/weights, "
        "then library caches, then the copies shipped in the package."
    )
    for name, record in records.items():
        status, where = _status(record)
        size = f"{record.size_bytes} bytes" if record.size_bytes else "size not published"
        print(f"\n{name}  [{status}]  {where if status != 'missing' else 'put it at ' + where}")
        print(f"  hash     {record.expected}  ({size})")
        print(f"  source   {record.hash_source}")
        print(f"  used by  {', '.join(users[name])}")
        print(f"  licence  {record.license}")
        print(f"  urls     {' | '.join(record.urls) or 'none: trained by this project, shipped'}")
    surrogates = [s.name for s in list_extractors() if s.is_surrogate]
    print(f"\nNo weights needed (surrogates, never paper-comparable): {', '.join(surrogates)}")
    return 0
