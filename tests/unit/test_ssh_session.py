"""What an SSH session runs in the machine, and how `onebox ssh` tells a machine name
from a verb."""

from __future__ import annotations

import subprocess
import warnings

import click
import typer

from onebox.cli import ssh as ssh_cli
from onebox.ssh import session


def test_exec_requests_run_through_the_machine_shell() -> None:
    assert session.command_for("web", "echo $HOME; exit 3", None) == [
        "/bin/sh",
        "-c",
        "echo $HOME; exit 3",
    ]


def test_a_shell_request_starts_a_login_shell() -> None:
    assert session.command_for("web", None, None) == session.LOGIN_SHELL


def test_sftp_runs_the_machine_server_or_explains_what_to_install() -> None:
    argv = session.command_for("web", None, "sftp")
    assert "exec /usr/lib/openssh/sftp-server" in argv[2]
    assert "apt-get install openssh-sftp-server" in argv[2]
    assert argv[2].endswith(f"exit {session.NO_SFTP}")


def test_other_subsystems_are_refused_with_a_message() -> None:
    done = subprocess.run(session.command_for("web", None, "netconf"), capture_output=True)
    assert done.returncode == 1
    assert done.stderr == b"onebox: the SSH entry offers no 'netconf' subsystem, only sftp\n"


def test_environment_passes_locale_and_term_only() -> None:
    requested = {"LANG": "C.UTF-8", "LC_ALL": "C", "LD_PRELOAD": "/x.so", "PATH": "/evil"}
    assert session.environment(requested, "xterm") == {
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "TERM": "xterm",
    }


def _routed(args: list[str]) -> list[str]:
    group = typer.main.get_command(ssh_cli.app)
    assert isinstance(group, click.Group)
    with warnings.catch_warnings():  # click 8 keeps the command word apart; click 9 will not
        warnings.simplefilter("ignore", DeprecationWarning)
        with group.make_context("ssh", list(args), resilient_parsing=True) as ctx:
            return [*getattr(ctx, "protected_args", []), *ctx.args]


def test_a_machine_name_is_routed_to_enter() -> None:
    assert _routed(["web", "--", "ls", "-l"]) == ["enter", "web", "--", "ls", "-l"]
    assert _routed(["--lab", "x", "web"]) == ["enter", "--lab", "x", "web"]


def test_verbs_keep_their_place() -> None:
    assert _routed(["keys", "--lab", "x"]) == ["keys", "--lab", "x"]
    assert _routed(["add-key", "k.pub"]) == ["add-key", "k.pub"]
    assert _routed(["enter", "keys"]) == ["enter", "keys"]
