"""Run the rendered Asterisk instance: start, stop, restart, reload, status.

Asterisk runs in the foreground (``-f -C <etc>/asterisk.conf``) as a child in its own session;
its output goes to ``<instance>/log/asterisk.out`` and its pid to
``<instance>/run/callcenter-asterisk.pid``. Nothing is global: several instances (a demo and the
tests, with their own data_dir and ports) can run side by side.

In chroot mode it runs in a private mount namespace so no mount leaks to the host::

    unshare --mount --propagation private sh -c '
        mount --rbind /dev ROOT/dev && mount --rbind /proc ROOT/proc &&
        mount --bind INSTANCE ROOT/srv/cc-<hash> && exec chroot ROOT /usr/sbin/asterisk -f ...'

so inside, the instance is at ``/srv/cc-<hash>`` (see ``AsteriskInstall.instance_path``).

Started by root, Asterisk runs as ``settings.asterisk_user`` (``-U``/``-G``; created if absent on
the host and, with the same uid, in the chroot): the instance's run, log, spool, lib and cache
folders are that user's (group-writable for its group, setgid), the rendered etc stays the app's
with the group's read access. Asterisk's files are made with umask 007: its group (the app's user
belongs to it) reads recordings and voicemail, nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

from asterisk_conf import ivr_sounds
from asterisk_conf.apply import RELOAD_MODULES, reload_running
from asterisk_conf.installer import AsteriskInstall, chroot_instance_path, ensure_asterisk, locate_asterisk
from asterisk_conf.render import render_config
from callcenter.config import Settings

log = logging.getLogger(__name__)

PID_NAME = "callcenter-asterisk.pid"
OUT_NAME = "asterisk.out"
# Popen objects of the instances this process started (to reap them), by instance path.
_children: dict[str, subprocess.Popen] = {}


class AsteriskStartError(RuntimeError):
    """Asterisk did not come up."""


def _instance(settings: Settings) -> Path:
    return settings.asterisk_instance_dir()


def pid_file(settings: Settings) -> Path:
    return _instance(settings) / "run" / PID_NAME


def output_log(settings: Settings) -> Path:
    return _instance(settings) / "log" / OUT_NAME


def _conf_path(settings: Settings, install: AsteriskInstall) -> str:
    """asterisk.conf as Asterisk sees it."""
    return str(install.instance_path(_instance(settings)) / "etc" / "asterisk.conf")


# --- Asterisk's own user ------------------------------------------------------------------------

RUNTIME_DIRS = ("run", "log", "spool", "lib", "cache")  # what Asterisk writes


def pbx_user(settings: Settings) -> str:
    """The user Asterisk runs as, when this process may make it so (root); else ''."""
    name = (settings.asterisk_user or "").strip()
    if not name or os.geteuid() != 0:
        return ""
    if not name.replace("-", "").replace("_", "").isalnum() or name == "root":
        raise AsteriskStartError(f"not an unprivileged user name: {name!r}")
    return name


def ensure_system_user(name: str) -> pwd.struct_passwd:
    """A system user with a group of its own name and no login (created if absent)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
            + ["--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def ensure_pbx_user(name: str, install: AsteriskInstall) -> tuple[int, int]:
    """The user and its group on the host (created if absent) and, with the same ids, in the
    chroot's /etc/passwd and /etc/group (Asterisk's -U looks them up there). Returns (uid, gid)."""
    entry = ensure_system_user(name)
    uid, gid = entry.pw_uid, entry.pw_gid
    if install.mode == "chroot" and install.root is not None:
        group_name = grp.getgrgid(gid).gr_name
        for path, line in (
            (install.root / "etc" / "group", f"{group_name}:x:{gid}:"),
            (install.root / "etc" / "passwd", f"{name}:x:{uid}:{gid}::/nonexistent:/usr/sbin/nologin"),
        ):
            names = {ln.split(":", 1)[0] for ln in path.read_text().splitlines()}
            if line.split(":", 1)[0] not in names:
                with open(path, "a") as fh:
                    fh.write(line + "\n")
    return uid, gid


def hand_over(settings: Settings) -> None:
    """Root lays out Asterisk's instance once (the launcher of a systemd unit); in a data
    directory that belongs to the service user, what root created there (the database, the
    secrets, the rendered configuration, the prompts) becomes that user's, so the engine and the
    web console, which never run as root, can re-render and read their own files. Asterisk's
    runtime folders are left to ``own_instance``."""
    data = settings.data_dir.resolve()
    owner = data.stat()
    if os.geteuid() != 0 or owner.st_uid == 0:
        return
    runtime = {_instance(settings) / d for d in RUNTIME_DIRS}
    for root, dirs, files in os.walk(str(data)):
        dirs[:] = [d for d in dirs if Path(root, d) not in runtime and not Path(root, d).is_symlink()]
        for path in (Path(root), *(Path(root, f) for f in files)):
            st = path.lstat()
            if st.st_uid == 0 and not path.is_symlink():
                os.chown(path, owner.st_uid, owner.st_gid)


def own_instance(settings: Settings, uid: int, gid: int) -> None:
    """Asterisk's folders are its user's; the instance and etc are readable by its group only."""
    inst = _instance(settings)
    app_uid = inst.stat().st_uid
    os.chown(inst, app_uid, gid)
    inst.chmod(0o750)
    etc = inst / "etc"
    os.chown(etc, app_uid, gid)
    etc.chmod(0o2750)  # new files (a re-render) get the group too
    for f in etc.iterdir():
        if f.is_file() and not f.is_symlink():
            os.chown(f, app_uid, gid)
            f.chmod(0o640)
    for d in RUNTIME_DIRS:
        top = inst / d
        top.mkdir(exist_ok=True)
        for root, dirs, files in os.walk(str(top)):
            os.chown(root, uid, gid)
            os.chmod(root, 0o2770)
            for name in files:
                file = Path(root) / name
                if not file.is_symlink():
                    os.chown(file, uid, gid)
                    file.chmod(0o660)
            for d2 in dirs:
                if (Path(root) / d2).is_symlink():
                    dirs.remove(d2)
    # In system mode Asterisk reaches the instance through the data directory: let it pass
    # (no listing; the database and secrets are 0600 anyway).
    data = settings.data_dir.resolve()
    if inst.parent == data and data.stat().st_mode & 0o001 == 0:
        data.chmod((data.stat().st_mode & 0o777) | 0o001)


def _group_of(user: str) -> str:
    """The user's primary group (``useradd --user-group`` names it after the user)."""
    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return user


def command(settings: Settings, install: AsteriskInstall) -> list[str]:
    """The command line that runs Asterisk in the foreground for this instance."""
    conf = _conf_path(settings, install)
    user = pbx_user(settings)
    as_user = ["-U", user, "-G", _group_of(user)] if user else []
    if install.mode == "system":
        return [str(install.binary), "-f", "-n", *as_user, "-C", conf]
    root = install.root
    assert root is not None
    q = shlex.quote
    mount_point = install.instance_path(_instance(settings))
    inside = root / mount_point.relative_to("/")
    steps = [
        "set -e",
        "umask 022",  # the mount point inside the root must be reachable by Asterisk's user
        f"mount --rbind /dev {q(str(root / 'dev'))}",
        f"mount --rbind /proc {q(str(root / 'proc'))}",
        f"mkdir -p {q(str(inside))}",
        f"mount --bind {q(str(_instance(settings)))} {q(str(inside))}",
    ]
    for f in ("/etc/hosts", "/etc/resolv.conf"):
        target = root / f.lstrip("/")
        if Path(f).exists() and target.is_file() and not target.is_symlink():
            steps.append(f"mount --bind {q(f)} {q(str(target))}")
    steps.append("umask 007")  # Asterisk's recordings and logs: its user and group only
    argv = [str(install.binary), "-f", "-n", *as_user, "-C", conf]
    steps.append(f"exec chroot {q(str(root))} {' '.join(q(a) for a in argv)}")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(steps)]


# --- pid bookkeeping -----------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _is_zombie(pid: int) -> bool:
    """Exited, waiting to be reaped. A process killed with -9 shows its main thread as a zombie
    while its other threads are still going down, holding its ports: not gone until they are."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    if stat.rsplit(")", 1)[-1].split()[0] != "Z":
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


def _reap(pid: int) -> None:
    proc = _children.get(str(pid))
    if proc is not None:
        if proc.poll() is not None:
            _children.pop(str(pid), None)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _running_pid(settings: Settings) -> int | None:
    """The pid of this instance's Asterisk if it runs (checked against its command line)."""
    path = pid_file(settings)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    if str(pid) in _children:
        # Started here and not reaped yet, so the pid cannot have been reused; the command line
        # is empty while a killed Asterisk goes down (its main thread a zombie, its ports open).
        return pid
    inst = _instance(settings)
    expected = {
        str(inst / "etc" / "asterisk.conf"),
        str(chroot_instance_path(inst) / "etc" / "asterisk.conf"),
    }
    if not any(a in expected for a in _cmdline(pid)):
        return None  # the pid was reused by something else
    return pid


# --- readiness -----------------------------------------------------------------------------------


def _ami_address(settings: Settings) -> tuple[str, int]:
    host = settings.ami_host
    if host in ("", "0.0.0.0", "::", "*"):
        host = "127.0.0.1"
    return host, int(settings.ami_port)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _udp_port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def ami_fully_booted(settings: Settings, timeout: float = 5.0) -> bool:
    """Log in to AMI with a raw socket and wait for FullyBooted (sent on login once booted)."""
    host, port = _ami_address(settings)
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            buf = b""
            while b"\r\n" not in buf:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            login = (
                "Action: Login\r\n"
                f"Username: {settings.ami_user}\r\n"
                f"Secret: {settings.ami_secret}\r\n"
                "Events: system\r\n"
                "ActionID: cc-ready\r\n\r\n"
            )
            sock.sendall(login.encode())
            while time.monotonic() < deadline:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    return False
                buf += chunk
                text = buf.decode(errors="replace")
                if "Response: Error" in text and "ActionID: cc-ready" in text:
                    raise AsteriskStartError(f"AMI login refused for user {settings.ami_user!r}")
                if "Event: FullyBooted" in text:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"Action: Logoff\r\n\r\n")
                    return True
    except (OSError, TimeoutError):
        return False
    return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- public API ----------------------------------------------------------------------------------


def prepare(settings: Settings, install: AsteriskInstall | None = None) -> AsteriskInstall:
    """Install if needed, render the configuration and generate the prompts."""
    if not settings.ami_secret:
        settings.load_secrets()
    install = install or ensure_asterisk(settings)
    render_config(settings, install=install)
    ivr_sounds.generate_all(settings)
    return install


PORT_RELEASE_S = 5.0  # how long start() waits for a dying Asterisk to let go of the AMI port


def start(settings: Settings, timeout: float = 60) -> dict:
    """Start this instance's Asterisk and wait until AMI reports FullyBooted. Idempotent."""
    if not settings.ami_secret:
        settings.load_secrets()
    pid = _running_pid(settings)
    if pid is not None:
        log.info("Asterisk already runs for %s (pid %s)", _instance(settings), pid)
        return status(settings)
    ami_host, ami_port = _ami_address(settings)
    # An Asterisk just killed may still be exiting: its main thread is a zombie (so it no longer
    # counts as running) while other threads still hold its sockets, for a few milliseconds.
    released = time.monotonic() + PORT_RELEASE_S
    while time.monotonic() < released and (
        _port_open(ami_host, ami_port) or not _udp_port_free(settings.sip_host, int(settings.sip_port))
    ):
        time.sleep(0.1)
    if _port_open(ami_host, ami_port):
        raise AsteriskStartError(
            f"something already listens on the AMI port {ami_host}:{ami_port} (another Asterisk?)"
        )
    if not _udp_port_free(settings.sip_host, int(settings.sip_port)):
        raise AsteriskStartError(f"the SIP port {settings.sip_host}:{settings.sip_port}/udp is in use")

    install = prepare(settings)
    hand_over(settings)
    user = pbx_user(settings)
    if user:
        own_instance(settings, *ensure_pbx_user(user, install))
    cmd = command(settings, install)
    out_path = output_log(settings)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(out_path, "ab") as out:
        out.write(f"\n=== starting {time.strftime('%F %T')}: {' '.join(cmd[:3])} ...\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd,
            umask=0o007,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(_instance(settings)),
            close_fds=True,
        )
    _children[str(proc.pid)] = proc
    pf = pid_file(settings)
    pf.parent.mkdir(parents=True, exist_ok=True)
    pf.write_text(f"{proc.pid}\n")

    deadline = started + timeout
    while True:
        if proc.poll() is not None:
            pf.unlink(missing_ok=True)
            _children.pop(str(proc.pid), None)
            raise AsteriskStartError(
                f"Asterisk exited with status {proc.returncode} while starting; {out_path}:\n"
                + _tail(out_path)
                + "\n"
                + _tail(_instance(settings) / "log" / "messages")
            )
        if _port_open(ami_host, ami_port) and ami_fully_booted(settings, timeout=3):
            break
        if time.monotonic() > deadline:
            stop(settings)
            if proc.poll() is None:  # still in unshare/mount, before Asterisk was exec'd
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            _children.pop(str(proc.pid), None)
            raise AsteriskStartError(
                f"Asterisk did not report FullyBooted within {timeout:.0f} s; {out_path}:\n" + _tail(out_path)
            )
        time.sleep(0.2)
    log.info("Asterisk up in %.1f s (pid %s, %s mode)", time.monotonic() - started, proc.pid, install.mode)
    return status(settings, install)


def stop(settings: Settings, timeout: float = 15) -> bool:
    """Stop this instance's Asterisk: SIGTERM (a fast clean shutdown), SIGKILL after ``timeout``.

    Returns True if a running Asterisk was stopped. Idempotent.
    """
    pf = pid_file(settings)
    pid = _running_pid(settings)
    if pid is None:
        pf.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        log.warning("Asterisk (pid %s) ignored SIGTERM for %.0f s: killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        end = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.05)
    proc = _children.pop(str(pid), None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)
    pf.unlink(missing_ok=True)
    return True


def restart(settings: Settings, timeout: float = 60) -> dict:
    stop(settings)
    return start(settings, timeout=timeout)


def cli_command(settings: Settings, cmd: str, timeout: float = 30) -> str:
    """Run an Asterisk CLI command (``asterisk -rx``) against this running instance."""
    pid = _running_pid(settings)
    if pid is None:
        raise RuntimeError("Asterisk is not running for this instance")
    install = locate_asterisk(settings)
    conf = _conf_path(settings, install)
    if install.mode == "chroot":
        # Enter Asterisk's own mount namespace and root, where /srv/cc-<hash> is mounted.
        argv = ["nsenter", f"--target={pid}", "--mount", "--root", "--wd"]
        argv += [str(install.binary), "-C", conf, "-rx", cmd]
    else:
        argv = [str(install.binary), "-C", conf, "-rx", cmd]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"asterisk -rx {cmd!r} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def reload(settings: Settings) -> str:
    """Render the configuration again and make the running Asterisk take it: the modules that
    read the rendered files (pjsip, queues, dialplan) are reloaded over its control socket;
    calls go on.

    A changed modules.conf needs a restart. When Asterisk is not running, this only renders.
    """
    if not settings.ami_secret:
        settings.load_secrets()
    prepare(settings, install=locate_asterisk(settings))  # never builds: only renders
    if _running_pid(settings) is None:
        return "rendered (Asterisk is not running)"
    asyncio.run(reload_running(settings))
    return "reloaded " + ", ".join(RELOAD_MODULES)


def status(settings: Settings, install: AsteriskInstall | None = None) -> dict:
    pid = _running_pid(settings)
    try:
        install = install or locate_asterisk(settings)
        mode, version, installed = (
            install.mode,
            install.version() if install.installed else "",
            install.installed,
        )
    except Exception as exc:  # noqa: BLE001 - status must always answer
        mode, version, installed = settings.asterisk_mode, f"unavailable: {exc}", False
    host, port = _ami_address(settings)
    return {
        "running": pid is not None,
        "pid": pid,
        "mode": mode,
        "installed": installed,
        "version": version,
        "instance": str(_instance(settings)),
        "ami": f"{host}:{port}",
        "sip": f"{settings.sip_host}:{settings.sip_port}",
        "log": str(output_log(settings)),
    }
