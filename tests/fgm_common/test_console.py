"""fgm_common.console.run_then_exit: the exit status and output a command gives, without the interpreter's teardown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(body: str, tmp_path: Path, profiled: bool = False) -> subprocess.CompletedProcess:
    code = (
        "import atexit, sys\n"
        "from fgm_common.console import run_then_exit\n"
        f"atexit.register(lambda: open({str(tmp_path / 'teardown')!r}, 'w').close())\n"
        "def command():\n"
        f"    {body}\n"
        + ("import cProfile\ncProfile.Profile().enable()\n" if profiled else "")
        + "run_then_exit(command)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)


@pytest.mark.parametrize("body, status", [("print('done')", 0), ("print('done'); sys.exit(3)", 3),
                                          ("print('done'); sys.exit(None)", 0)])
def test_the_status_and_the_output_survive_and_the_teardown_is_skipped(tmp_path, body, status):
    done = _run(body, tmp_path)
    assert done.returncode == status and done.stdout == "done\n"
    assert not (tmp_path / "teardown").exists()  # atexit did not run: the interpreter's teardown was skipped


def test_a_message_exit_and_a_bug_end_as_python_ends_them(tmp_path):
    message = _run("sys.exit('bad input')", tmp_path)
    assert message.returncode == 1 and "bad input" in message.stderr
    bug = _run("raise KeyError('a bug')", tmp_path)
    assert bug.returncode == 1 and "Traceback" in bug.stderr and "KeyError" in bug.stderr
    assert (tmp_path / "teardown").exists()  # a bug takes the normal way out


def test_under_a_profiler_the_normal_exit_runs(tmp_path):
    done = _run("sys.exit(4)", tmp_path, profiled=True)
    assert done.returncode == 4 and (tmp_path / "teardown").exists()  # so the profiler can write its report


def test_bars_shown_together_render_each_at_its_own_width():
    from rich.console import Console

    from fgm_common import console as con

    wide = "a description far longer than the other bar's"
    top, bottom = con.progress_bar(eta_window=600.0), con.progress_bar()
    assert (top.speed_estimate_period, bottom.speed_estimate_period) == (600.0, 30.0)
    top.add_task(wide, total=2, completed=1, rate="")
    bottom.add_task("short", total=4, completed=4, rate="")
    screen = Console(width=100, record=True)
    screen.print(con.shown_together(top, bottom).renderable)
    lines = screen.export_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith(wide) and lines[1].startswith("short ━")  # no shared column
    assert con.shown_together(top, bottom, quiet=True).__enter__() is None  # quiet: no display at all
