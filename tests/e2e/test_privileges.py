"""Least privilege on the real stack: Asterisk runs as its own user, and neither AMI user can
write Asterisk's configuration or reload it (UpdateConfig + Reload would run a shell)."""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

import pytest

from asterisk_conf import process
from callcenter.ami.client import close_manager, open_manager


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def test_asterisk_runs_as_its_own_user(asterisk):
    if os.geteuid() != 0:
        pytest.skip("started by an unprivileged user: Asterisk is that user already")
    pid = process._running_pid(asterisk)
    assert pid is not None
    status = _status(pid)
    uids = {int(u) for u in status["Uid"].split()}
    assert uids == {pwd.getpwnam(asterisk.asterisk_user).pw_uid}  # real, effective, saved, fs
    assert 0 not in uids
    assert status["Name"] == "asterisk"
    # What it writes is its own, and nobody else's to read.
    queue_log = asterisk.asterisk_instance_dir() / "log" / "queue_log"
    st = queue_log.stat()
    assert st.st_uid in uids and st.st_mode & 0o007 == 0


def _raw_ami(settings, username: str, secret: str, *actions: str) -> str:
    """Log in over a plain socket and send actions; return everything Asterisk answered."""
    with socket.create_connection(("127.0.0.1", settings.ami_port), timeout=10) as sock:
        sock.recv(1024)
        payload = f"Action: Login\r\nUsername: {username}\r\nSecret: {secret}\r\nEvents: off\r\n\r\n"
        payload += "".join(actions) + "Action: Logoff\r\n\r\n"
        sock.sendall(payload.encode())
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out.decode(errors="replace")


def test_no_ami_user_can_write_the_configuration_or_reload(asterisk):
    update = (
        "Action: UpdateConfig\r\nActionID: update\r\nSrcFilename: extensions.conf\r\n"
        "DstFilename: extensions.conf\r\nReload: yes\r\nAction-000000: Append\r\n"
        "Cat-000000: cc-nowhere\r\nVar-000000: exten\r\n"
        "Value-000000: 666,1,AGI(/bin/sh,-c,id>/tmp/cc-pwned)\r\n\r\n"
    )
    reload = "Action: Reload\r\nActionID: reload\r\nModule: pbx_config.so\r\n\r\n"
    command = "Action: Command\r\nActionID: command\r\nCommand: core show version\r\n\r\n"
    for user, secret in (
        (asterisk.ami_user, asterisk.ami_secret),
        (asterisk.ami_engine_user, asterisk.ami_engine_secret),
    ):
        text = _raw_ami(asterisk, user, secret, update, reload, command)
        assert "Authentication accepted" in text, text
        for action_id in ("update", "reload", "command"):
            block = next(b for b in text.split("\r\n\r\n") if f"ActionID: {action_id}" in b)
            assert "Response: Error" in block and "Permission denied" in block, block
    etc = asterisk.asterisk_instance_dir() / "etc" / "extensions.conf"
    assert "cc-pwned" not in etc.read_text()


def test_the_engine_and_the_tools_have_separate_secrets(asterisk):
    assert asterisk.ami_secret != asterisk.ami_engine_secret
    text = _raw_ami(asterisk, asterisk.ami_engine_user, asterisk.ami_secret)
    assert "Authentication failed" in text


async def test_reloads_still_work_over_the_control_socket(asterisk):
    from asterisk_conf.apply import reload_running

    await reload_running(asterisk)
    manager = await open_manager(asterisk, events="off")
    close_manager(manager)
