"""Process sinks: shell command lines and argument lists, with real processes.

The canary is a marker file that the injected command would create: when the start is
refused, the process never existed, so the marker never appears.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.blocking import BlockedRequest
from bastion.protection import Protection
from tests.sinks.support import read_events, request, rule_ids, spy


def run_system(command: str) -> None:
    os.system(command)


def run_popen(command: str) -> None:
    with os.popen(command) as pipe:
        pipe.read()


def run_subprocess_shell(command: str) -> None:
    subprocess.run(command, shell=True, check=False)


def run_sh_c(command: str) -> None:
    subprocess.run(["sh", "-c", command], check=False)


SHELLS: list[Callable[[str], None]] = [run_system, run_popen, run_subprocess_shell, run_sh_c]


@pytest.mark.parametrize("run", SHELLS, ids=lambda r: r.__name__)
def test_injected_command_never_runs(
    protection: Protection, tmp_path: Path, run: Callable[[str], None]
) -> None:
    marker = tmp_path / "pwned"
    host = f"example.com; touch {marker}"
    with request(protection, {"host": host}) as ctx, pytest.raises(BlockedRequest):
        run(f"echo {host} > /dev/null")
    assert not marker.exists()
    assert ctx.blocked is not None


@pytest.mark.parametrize("run", SHELLS, ids=lambda r: r.__name__)
def test_plain_argument_runs(
    protection: Protection, tmp_path: Path, run: Callable[[str], None]
) -> None:
    out = tmp_path / "out.txt"
    with request(protection, {"word": "hello"}) as ctx:
        run(f"echo hello > {out}")
    assert out.read_text() == "hello\n"
    assert not ctx.events


def test_a_program_named_by_the_user_never_starts(protection: Protection, tmp_path: Path) -> None:
    marker = tmp_path / "made-by-touch"
    with request(protection, {"tool": "touch"}), pytest.raises(BlockedRequest):
        subprocess.run(["touch", str(marker)], check=False)
    assert not marker.exists()


def test_argv_with_user_data_as_an_argument_runs(protection: Protection, tmp_path: Path) -> None:
    out = tmp_path / "greeting"
    with request(protection, {"name": "alice"}):
        subprocess.run(["sh", "-c", 'printf %s "$1" > "$2"', "sh", "alice", str(out)],
                       check=True)
    assert out.read_text() == "alice"


def test_each_start_is_one_evaluation_with_its_address(
    protection: Protection, tmp_path: Path
) -> None:
    with request(protection, {"x": "nothing"}) as ctx:
        seen = spy(ctx)
        os.system("true")
        os.popen("true").close()  # os.popen starts a subprocess.Popen: still one
        subprocess.run(["true", "a"], check=True)
        subprocess.run("true b", shell=True, check=True)
        subprocess.run([b"true", Path("c")], check=True)  # bytes and PathLike items
        subprocess.run("true", executable="/bin/true", check=True)
        os.waitpid(os.spawnv(os.P_NOWAIT, "/bin/true", ["true", "d"]), 0)
        os.spawnl(os.P_WAIT, "/bin/true", "true", "e")  # spawnl -> spawnv: one
    assert seen == [
        {"server.sys.shell.cmd": "true"},
        {"server.sys.shell.cmd": "true"},
        {"server.sys.exec.cmd": ["true", "a"]},
        {"server.sys.shell.cmd": "true b"},
        {"server.sys.exec.cmd": ["true", "c"]},
        {"server.sys.exec.cmd": ["/bin/true"]},
        {"server.sys.exec.cmd": ["/bin/true", "d"]},
        {"server.sys.exec.cmd": ["/bin/true", "e"]},
    ]


def test_an_iterator_of_arguments_is_left_for_popen(protection: Protection) -> None:
    """Reading a one-shot iterator would leave Popen nothing: it is not evaluated."""
    with request(protection, {"x": "nothing"}) as ctx:
        seen = spy(ctx)
        done = subprocess.run(iter(["echo", "still here"]), capture_output=True, check=True)
    assert done.stdout == b"still here\n" and seen == []


def test_spawn_and_posix_spawn_are_refused_before_the_process(
    protection: Protection, tmp_path: Path
) -> None:
    marker = tmp_path / "spawned"
    with request(protection, {"tool": "touch"}):
        with pytest.raises(BlockedRequest):
            os.spawnvp(os.P_WAIT, "touch", ["touch", str(marker)])
        with pytest.raises(BlockedRequest):
            os.posix_spawnp("touch", ["touch", str(marker)], dict(os.environ))
    assert not marker.exists()


EXEC_CHILD = textwrap.dedent("""
    import os, sys
    from bastion import sinks
    from bastion.blocking import BlockedRequest
    from tests.sinks.support import make_protection, request
    from pathlib import Path

    sinks.install()
    tmp, marker = Path(sys.argv[1]), sys.argv[2]
    with request(make_protection(tmp), {"tool": "touch"}):
        try:
            os.{function}("touch", {arguments})
        except BlockedRequest:
            print("refused")
""")


@pytest.mark.parametrize(("function", "arguments"), [
    ("execvp", '["touch", marker]'),
    ("execlp", '"touch", marker'),
    ("execvpe", '["touch", marker], dict(os.environ)'),
])
def test_exec_is_refused_before_the_process_is_replaced(
    tmp_path: Path, function: str, arguments: str
) -> None:
    marker = tmp_path / "exec-marker"
    script = EXEC_CHILD.replace("{function}", function).replace("{arguments}", arguments)
    child = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(marker)],
                           capture_output=True, text=True, timeout=120,
                           cwd=Path(__file__).parents[2])
    assert child.stdout.strip() == "refused", child.stderr
    assert not marker.exists()


def test_monitor_mode_runs_the_command_and_reports_the_stack(
    monitor: Protection, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    host = f"example.com; touch {marker}"
    with request(monitor, {"host": host}):
        os.system(f"echo {host} > /dev/null")
    assert marker.exists()
    [event] = read_events(monitor, tmp_path)
    assert rule_ids(event) == ["bst-rasp-003"]
    frames = event["triggers"][0]["stack"]["frames"]
    assert frames[-1]["function"] == "test_monitor_mode_runs_the_command_and_reports_the_stack"


def test_outside_a_request_nothing_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "made"
    os.system(f"echo x; touch {marker}")
    assert marker.exists()


def test_asyncio_subprocesses_are_refused_before_the_process(
    protection: Protection, tmp_path: Path
) -> None:
    marker = tmp_path / "async-marker"

    async def start() -> None:
        process = await asyncio.create_subprocess_exec("touch", str(marker))
        await process.wait()

    with request(protection, {"tool": "touch"}), pytest.raises(BlockedRequest):
        asyncio.run(start())
    assert not marker.exists()
