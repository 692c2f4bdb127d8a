"""How every command reports a mistake the user can fix: one exception base, one printer.

A bad option, a missing or unreadable file, or data that cannot be used raises a ``UserError``
(each package has its own subclass) whose message is one line: what is wrong and what to do.
Every console script runs its work through ``run_reporting``, which turns those, and the
operating system's errors, into that one line on stderr with exit status 2, never a traceback.
Warnings print as one line each, without the file and line that raised them.
"""

from __future__ import annotations

import errno
import sys
import warnings
from collections.abc import Callable

USAGE_ERROR = 2
INTERRUPTED = 130


class UserError(Exception):
    """A mistake the user can fix; the message is one self-contained line."""


def describe_os_error(error: OSError) -> str:
    """``<file>: <reason>`` with a hint for the reasons a user can act on."""
    where = " -> ".join(str(name) for name in (error.filename, error.filename2) if name)
    reason = error.strerror or str(error)
    hint = {
        errno.ENOSPC: "free some space or write somewhere else",
        errno.EACCES: "check the permissions, or write somewhere else",
        errno.EROFS: "write somewhere else",
        errno.EISDIR: "give a file, not a folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
    }.get(error.errno)
    return (f"{where}: " if where else "") + reason + (f" ({hint})" if hint else "")


def first_line(error: BaseException | str) -> str:
    """The first line of an exception's or warning's message (its type's name if empty)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def run_reporting(
    prog: str, work: Callable[[], int | None], errors: tuple[type[BaseException], ...] = ()
) -> int:
    """Run ``work`` and return its exit status (None counts as 0). ``UserError``, ``OSError``,
    ``MemoryError`` and the extra ``errors`` print ``<prog>: error: <one line>`` and return 2; an
    interrupt returns 130."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # each distinct warning once
        warnings.showwarning = _one_line_warning(prog)
        try:
            status = work()
            return 0 if status is None else status
        except OSError as error:
            message = describe_os_error(error)
        except MemoryError as error:
            message = f"out of memory ({first_line(error)}); ask for less (a smaller size or n)"
        except (UserError, *errors) as error:
            message = first_line(error)
        except KeyboardInterrupt:
            print(
                f"{prog}: interrupted; finished work is kept, run again to resume", file=sys.stderr
            )
            return INTERRUPTED
    print(f"{prog}: error: {message}", file=sys.stderr)
    return USAGE_ERROR


def _one_line_warning(prog: str) -> Callable[..., None]:
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        from tqdm import tqdm  # above any progress bar

        tqdm.write(f"{prog}: warning: {first_line(message)}", file=sys.stderr)

    return show
