"""One rich console for every command, the progress bar long jobs share, and the commands' quick exit."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Callable, NoReturn

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, soft_wrap=True)  # log lines are not wrapped at 80 columns in files


def progress_bar(quiet: bool = False, eta_window: float = 30.0) -> Progress:
    """Bar with count, a free-text rate field ({task.fields[rate]}), elapsed and ETA; hidden when quiet.

    The ETA is the remaining count over the rate of the last `eta_window` seconds: a bar whose steps
    are minutes apart (a sweep's variants) needs a window that holds at least two of them.
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=False,
        speed_estimate_period=eta_window,
    )


def shown_together(*bars: Progress, quiet: bool = False) -> AbstractContextManager:
    """A context showing `bars` in one live display, each table sized on its own; nothing when quiet.

    rich shows one live display at a time, so bars shown together are not entered themselves.
    """
    if quiet:
        return nullcontext()
    return Live(Group(*bars), console=console, refresh_per_second=10, transient=False)


def run_then_exit(command: Callable[[], None]) -> NoReturn:
    """Run a console command, flush its output, and end the process without the interpreter's teardown.

    Tearing down torch with a loaded CLIP model takes about a second after the command's last write
    (docs/clip-runtime.md), and the user waits for it. Every file a command writes is whole before
    the command returns, so nothing is lost by skipping it. An exception other than SystemExit
    propagates as usual (traceback, normal exit). Under a profiler or tracer (cProfile, coverage,
    a debugger) the normal exit runs, so they still write their reports.
    """
    try:
        command()
        code: object = 0
    except SystemExit as done:
        code = done.code
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    if isinstance(code, str):  # SystemExit("message"): printed, status 1, as the interpreter does
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code or 0))
