"""Run a risky function in a child process limited in memory and time.

Native decoders (JPEG 2000, JPEG-LS, JPEG) can crash or hang on damaged data
(RELIABILITY R22/R23). A long-running process (the viewer's server) decodes such
data here: a crash, a hang or a runaway allocation takes only the child down and
comes back as one :class:`~dicomlens.errors.SeriesError`.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from collections.abc import Callable
from typing import Any, Final, TypeVar

from dicomlens.errors import DicomlensError, SeriesError

__all__ = ["DECODE_MEMORY", "DECODE_SECONDS", "run_isolated"]

DECODE_SECONDS: Final = 30.0
"""Longest a child may run."""
DECODE_MEMORY: Final = 2 << 30
"""Memory a child may allocate beyond what it inherits, in bytes."""

T = TypeVar("T")


def run_isolated(
    function: Callable[..., T],
    *args: Any,
    what: str,
    seconds: float = DECODE_SECONDS,
    memory: int = DECODE_MEMORY,
) -> T:
    """``function(*args)`` in a forked child limited to ``memory`` more bytes and
    ``seconds``; its result, or its :class:`DicomlensError`, comes back here.

    ``what`` names the work in messages (a file path). The child is forked, so it
    shares the code already loaded here and starts in milliseconds.

    >>> run_isolated(sum, [1, 2, 3], what="a sum")
    6
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, memory, function, args), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(seconds):
            child.kill()
            raise SeriesError(f"{what}: took longer than {seconds:g} s; stopped")
        try:
            outcome, value = receive.recv()
        except EOFError:
            child.join()
            raise SeriesError(
                f"{what}: the decoder crashed on this data (exit {child.exitcode})"
            ) from None
    finally:
        receive.close()
        child.join(timeout=5)
        if child.is_alive():
            child.kill()
    if outcome == "error":
        raise value
    result: T = value
    return result


def _child(send: Any, memory: int, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Limit this process, run the function, send back what came of it."""
    _limit_memory(memory)
    try:
        message: tuple[str, Any] = ("value", function(*args))
    except DicomlensError as exc:
        message = ("error", exc)
    except MemoryError:
        message = ("error", SeriesError(f"{args[0] if args else 'data'}: needs more memory "
                                        f"than allowed ({memory >> 20} MB)"))  # fmt: skip
    except Exception as exc:  # a decoder's own failure: reported as such
        message = ("error", SeriesError(f"{type(exc).__name__}: {' '.join(str(exc).split())}"))
    send.send(message)
    send.close()


def _limit_memory(extra: int) -> None:
    """Allow the address space this process has, plus ``extra`` bytes."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[0])
        current = pages * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (current + extra, current + extra))
    except (OSError, ValueError):
        pass  # no /proc or no permission: time is still limited
