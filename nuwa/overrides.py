"""The command line of the hydra entry points (``nuwa-sample``, ``nuwa-train``), read before hydra.

Hydra's override grammar refuses unquoted values with letters outside ASCII (``out=bild_ä.png``)
and stops with several lines and exit status 1. Here, a value holding such letters or spaces is
quoted for the user, and any other override hydra cannot read ends as one line naming it, with
how to quote it, and exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from nuwa.errors import USAGE_ERROR


def quote_value(argument: str) -> str:
    """``key=value`` with ``value`` in quotes when it holds non-ASCII letters or whitespace and
    is not quoted already; anything else unchanged."""
    key, equals, value = argument.partition("=")
    if argument.startswith("-") or not equals or value[:1] in ("'", '"'):
        return argument
    if value.isascii() and not any(char.isspace() for char in value):
        return argument
    quote = "'" if "'" not in value else '"'
    escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return f"{key}={quote}{escaped}{quote}"


def check_overrides(arguments: list[str]) -> str | None:
    """The first override hydra could not read, as a one-line message; None if all are fine."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for argument in arguments:
        if argument.startswith("-"):
            continue
        try:
            parser.parse_overrides([argument])
        except HydraException as err:
            reason = str(err).strip().splitlines()[0]
            return (
                f"cannot read {argument!r} ({reason}); write key=value, and quote a value with "
                "commas, brackets or quotes: 'text=\"a lake, at dusk\"'"
            )
    return None


def run_hydra(prog: str, hydra_main: Callable[[], None]) -> None:
    """Quote and check ``sys.argv``'s overrides, then hand them to ``hydra_main``."""
    arguments = [quote_value(argument) for argument in sys.argv[1:]]
    problem = check_overrides(arguments)
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    sys.argv[1:] = arguments
    hydra_main()
