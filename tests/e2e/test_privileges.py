"""Least privilege on the real stack: Asterisk runs as its own user, neither AMI user can write
Asterisk's configuration or reload it (UpdateConfig + Reload would run a shell), and the engine
and the web console run as the unprivileged service user."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from asterisk_conf import process
from callcenter.ami.client import close_manager, open_manager
from callcenter.config import Settings
from callcenter.database import migrate
from tests.conftest import missing_part
from tests.e2e.conftest import _OFF, env_for


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def test_asterisk_runs_as_its_own_user(asterisk):
    if os.geteuid() != 0:
        missing_part("root: the stack starts Asterisk as root, which then drops to its own user")
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


# The unprivileged deployment (docs/deploy/*.service): root only starts Asterisk, which runs as
# callcenter-pbx; the engine and the web console run as the service user in Asterisk's group.
SERVICE_USER = "callcenter"
_UNPRIVILEGED_PORTS = {
    "ami_port": 25338 + _OFF,
    "sip_port": 25360 + _OFF,
    "sip_tls_port": 0,
    "agi_port": 24873 + _OFF,
    "web_port": 28380 + _OFF,
    "rtp_start": 12400 + _OFF,
    "rtp_end": 12449 + _OFF,
    "doctor_sip_port": 25399 + _OFF,
    "asterisk_http_port": 28388 + _OFF,
}


def _as_user(user: pwd.struct_passwd, groups: list[int]) -> list[str]:
    return [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--groups=" + ",".join(str(g) for g in groups),
        "--inh-caps=-all",
    ]


def _python_for(prefix: list[str], pythonpath: str) -> str | None:
    """An interpreter of this Python version the service user can run with the project's code."""
    candidates = [
        os.path.realpath(sys.executable),
        f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}",
    ]
    for python in candidates:
        probe = [*prefix, "env", f"PYTHONPATH={pythonpath}", python, "-c", "import hotline.cli, fastapi"]
        if subprocess.run(probe, capture_output=True, cwd="/").returncode == 0:
            return python
    return None


def _readable_code(prefix: list[str], work: Path) -> tuple[str, str]:
    """(python, PYTHONPATH) for the service user: the checkout and its site-packages where they
    are, or a copy in ``work`` when they sit in a folder the user cannot read (e.g. /root)."""
    root = Path(__file__).resolve().parents[2]
    site = sysconfig.get_paths()["purelib"]
    path = f"{root}:{site}"
    python = _python_for(prefix, path)
    if python is None:
        staged = work / "code"
        staged.mkdir(mode=0o755)
        for package in (
            "callcenter",
            "agi_scripts",
            "asterisk_conf",
            "dispatch",
            "sms",
            "web_console",
            "hotline",
            "migrations",
        ):
            shutil.copytree(root / package, staged / package)
        shutil.copytree(site, staged / "site-packages", symlinks=True)
        path = f"{staged}:{staged / 'site-packages'}"
        python = _python_for(prefix, path)
    assert python is not None, "no Python the service user can run the project with"
    return python, path


@pytest.fixture
def service_folder():
    """A folder the service user can reach (pytest's own tmp folder is root's, mode 0700)."""
    work = Path(tempfile.mkdtemp(prefix="cc-unprivileged-"))
    work.chmod(0o755)
    yield work
    shutil.rmtree(work, ignore_errors=True)


def test_the_engine_and_console_run_unprivileged_beside_asterisk(service_folder):
    """Root starts Asterisk for a data folder the service user owns; `callcenter serve` runs as
    that user (in Asterisk's group only), owns every file it writes, answers, logs in to AMI,
    and reloads Asterisk over the control socket after an administrator's change."""
    if os.geteuid() != 0:
        missing_part("root: Asterisk is started as root and the app as the service user")
    user = process.ensure_system_user(SERVICE_USER)
    pbx = grp.getgrnam(process._group_of(Settings(_env_file=None).asterisk_user))
    work = service_folder
    data = work / "var"
    data.mkdir(mode=0o700)
    os.chown(data, user.pw_uid, user.pw_gid)
    settings = Settings(data_dir=data, _env_file=None, **_UNPRIVILEGED_PORTS)
    # As root, as the callcenter-asterisk unit's `callcenter asterisk start` does.
    migrate(settings)
    process.start(settings)
    try:
        prefix = _as_user(user, [pbx.gr_gid])
        python, pythonpath = _readable_code(prefix, work)
        env = {
            **env_for(settings),
            "PYTHONPATH": pythonpath,
            "HOME": str(work),
            "CALLCENTER_PRODUCTION": "false",
        }
        log = work / "serve.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*prefix, python, "-m", "hotline.cli", "serve"],
                env=env,
                cwd=work,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            base = f"http://127.0.0.1:{settings.web_port}"
            deadline = time.monotonic() + 60
            while "AMI logged in" not in log.read_text(errors="replace"):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            assert httpx.get(base + "/healthz", trust_env=False, timeout=5).status_code == 200
            uids = {int(u) for u in _status(proc.pid)["Uid"].split()}
            assert uids == {user.pw_uid}, uids
            # A change applied as the service user: the configuration rendered again and Asterisk
            # reloaded over its control socket (what the engine does after an administrator's edit).
            reload = subprocess.run(
                [*prefix, python, "-m", "hotline.cli", "asterisk", "reload"],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert reload.returncode == 0 and reload.stdout.startswith("reloaded"), (
                reload.stdout + reload.stderr
            )
            # The files the app writes are the service user's (none root's); only the launcher's
            # log and pid file, links into Asterisk's install and the empty folders Asterisk
            # makes before it drops root are not.
            root_owned = [
                p.relative_to(data).as_posix()
                for p in data.rglob("*")
                if p.lstat().st_uid == 0 and not p.is_symlink() and not (p.is_dir() and not any(p.iterdir()))
            ]
            assert sorted(root_owned) == [
                "asterisk/log/asterisk.out",
                "asterisk/run/callcenter-asterisk.pid",
            ], root_owned
            for name in ("callcenter.db", "secrets.json", "asterisk/etc", "asterisk/etc/pjsip.conf"):
                assert (data / name).stat().st_uid == user.pw_uid, name
            assert (data / "callcenter.db").stat().st_mode & 0o077 == 0
            assert "Traceback" not in log.read_text(errors="replace"), log.read_text()[-3000:]
        finally:
            proc.terminate()
            proc.wait(20)
    finally:
        process.stop(settings)
