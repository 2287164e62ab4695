"""Find or build the Asterisk the call center runs.

Two kinds of installation:

* ``system``: an ``asterisk`` binary on the host (``apt install asterisk`` on Ubuntu 24.04 or
  Debian sid, or a Debian sid container image).
* ``chroot``: Debian 12 has no Asterisk package, so a minimal Debian sid root is made with
  ``debootstrap --variant=minbase --include=asterisk,asterisk-modules sid DIR MIRROR`` and Asterisk
  runs inside it (see :mod:`asterisk_conf.process`).

Paths come in two flavours: as the host sees them and as Asterisk sees them. The mapping lives
here only: :meth:`AsteriskInstall.host_path` (Asterisk's view -> host) and
:meth:`AsteriskInstall.instance_path` (where a rendered instance appears to Asterisk).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from callcenter.config import Settings

log = logging.getLogger(__name__)

DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "sid"
PACKAGES = ("asterisk", "asterisk-modules")
BINARY = Path("/usr/sbin/asterisk")
# Folders the asterisk package makes owned by the 'asterisk' user. Asterisk runs as root in the
# chroot (with -U root it drops capabilities and cannot write them), so they are given to root.
ASTERISK_OWNED_DIRS = (
    "/etc/asterisk",
    "/var/lib/asterisk",
    "/var/spool/asterisk",
    "/var/log/asterisk",
    "/var/run/asterisk",
)
_MODULE_DIR_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/asterisk/modules",
    "/usr/lib/aarch64-linux-gnu/asterisk/modules",
    "/usr/lib/asterisk/modules",
    "/usr/lib64/asterisk/modules",
)
# Modules the browser phone needs (SIP over WebSocket, DTLS-SRTP, ICE in res_rtp_asterisk) and
# the codecs it speaks: an Asterisk without them cannot serve a browser seat.
WEBRTC_MODULES = (
    "res_crypto.so",
    "res_http_websocket.so",
    "res_pjsip_transport_websocket.so",
    "res_srtp.so",
    "res_rtp_asterisk.so",
    "codec_ulaw.so",
    "codec_alaw.so",
    "codec_opus_open_source.so",
    "res_format_attr_opus.so",
)
_DATA_DIR_CANDIDATES = ("/usr/share/asterisk", "/var/lib/asterisk")
# The mount point of a rendered instance inside the chroot: /srv/cc-<hash of the host path>.
CHROOT_INSTANCE_BASE = Path("/srv")


class AsteriskInstallError(RuntimeError):
    """Asterisk is not available and cannot be made available."""


@dataclass(frozen=True)
class AsteriskInstall:
    mode: str  # "system" | "chroot"
    root: Path | None  # the chroot (host path); None in system mode
    binary: Path  # as Asterisk sees it
    modules_dir: Path  # as Asterisk sees it
    data_dir: Path  # the system data dir (sounds, firmware, ...), as Asterisk sees it

    def host_path(self, p: Path | str) -> Path:
        """Map a path as Asterisk sees it to the host path."""
        p = Path(p)
        if self.mode == "chroot" and self.root is not None:
            return self.root / p.relative_to("/") if p.is_absolute() else self.root / p
        return p

    def instance_path(self, instance_dir: Path) -> Path:
        """Where the rendered instance at ``instance_dir`` (host path) appears to Asterisk.

        In chroot mode the instance is bind-mounted at /srv/cc-<hash> inside the root (in a
        private mount namespace, see process.py), so several instances can share one root.
        """
        instance_dir = Path(instance_dir).resolve()
        if self.mode == "chroot":
            return chroot_instance_path(instance_dir)
        return instance_dir

    def missing_modules(self, names: tuple[str, ...] = WEBRTC_MODULES) -> list[str]:
        """The modules of ``names`` this installation lacks."""
        folder = self.host_path(self.modules_dir)
        return [name for name in names if not (folder / name).is_file()]

    @property
    def installed(self) -> bool:
        return self.host_path(self.binary).exists()

    def version(self) -> str:
        """``Asterisk 22.10.1...`` (runs ``asterisk -V``)."""
        if self.mode == "chroot":
            cmd = ["chroot", str(self.root), str(self.binary), "-V"]
        else:
            cmd = [str(self.binary), "-V"]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip()


def instance_hash(instance_dir: Path) -> str:
    return hashlib.sha256(str(Path(instance_dir).resolve()).encode()).hexdigest()[:10]


def chroot_instance_path(instance_dir: Path) -> Path:
    """/srv/cc-<hash>: where an instance is bind-mounted inside the chroot."""
    return CHROOT_INSTANCE_BASE / f"cc-{instance_hash(instance_dir)}"


# --- locating ------------------------------------------------------------------------------------


def _parse_asterisk_conf_dirs(path: Path) -> dict[str, str]:
    """The [directories] of an asterisk.conf (``key => value``)."""
    result: dict[str, str] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return result
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^\[([^\]]+)\]", line)
        if m:
            section = m.group(1).strip()
            continue
        if section != "directories":
            continue
        m = re.match(r"^(\w+)\s*=>?\s*(.+)$", line)
        if m:
            result[m.group(1).lower()] = m.group(2).strip()
    return result


def _describe(mode: str, root: Path | None, binary: Path) -> AsteriskInstall:
    def host(p: str) -> Path:
        return root / p.lstrip("/") if root is not None else Path(p)

    dirs = _parse_asterisk_conf_dirs(host("/etc/asterisk/asterisk.conf"))
    modules = dirs.get("astmoddir")
    if not modules or not host(modules).is_dir():
        modules = next((c for c in _MODULE_DIR_CANDIDATES if host(c).is_dir()), _MODULE_DIR_CANDIDATES[0])
    data = dirs.get("astdatadir")
    if not data or not host(data).is_dir():
        data = next(
            (c for c in _DATA_DIR_CANDIDATES if host(c + "/sounds").is_dir()),
            _DATA_DIR_CANDIDATES[0],
        )
    return AsteriskInstall(
        mode=mode, root=root, binary=binary, modules_dir=Path(modules), data_dir=Path(data)
    )


def _system_binary() -> Path | None:
    found = shutil.which("asterisk")
    if found:
        return Path(found).resolve()
    for c in ("/usr/sbin/asterisk", "/usr/local/sbin/asterisk"):
        if Path(c).exists():
            return Path(c)
    return None


def locate_asterisk(settings: Settings) -> AsteriskInstall:
    """Describe the installation ``settings`` select, without building anything.

    In chroot mode the description holds even when the root is not built yet (``installed`` is
    then False); rendering can be done before the first build.
    """
    mode = settings.asterisk_mode
    if mode not in ("auto", "system", "chroot"):
        raise AsteriskInstallError(f"asterisk_mode must be auto, system or chroot, not {mode!r}")
    if mode in ("auto", "system"):
        binary = _system_binary()
        if binary is not None:
            return _describe("system", None, binary)
        if mode == "system":
            raise AsteriskInstallError(
                "asterisk_mode=system but no asterisk binary was found (install the 'asterisk' "
                "package, or use asterisk_mode=auto/chroot to run it from a Debian sid root)"
            )
    root = Path(settings.asterisk_root).resolve()
    return _describe("chroot", root, BINARY)


# --- the apt mirror ------------------------------------------------------------------------------


def _debian_archive(uri: str) -> bool:
    u = urlparse(uri.strip())
    if u.scheme not in ("http", "https"):
        return False
    path = u.path.rstrip("/")
    # The main archive ends in /debian (deb.debian.org/debian, ftp.XX.debian.org/debian,
    # a local mirror .../debian, snapshot.debian.org/archive/debian/<date>); not -security/-ports.
    parts = [p for p in path.split("/") if p]
    if "debian" not in parts:
        return False
    idx = parts.index("debian")
    tail = parts[idx + 1 :]
    if tail and not (u.hostname or "").startswith("snapshot."):
        return False
    return True


def _mirror_rank(uri: str) -> int:
    host = urlparse(uri).hostname or ""
    if host.startswith("snapshot."):
        return 2  # frozen in time: sid there may not match the keyring; use only if nothing else
    if host == "deb.debian.org" or host.endswith(".debian.org"):
        return 0
    return 1


def parse_apt_sources(list_texts: list[str], deb822_texts: list[str]) -> list[str]:
    """Debian main-archive URIs from sources.list-style and deb822 ``.sources`` texts, best first."""
    found: list[str] = []
    for text in list_texts:
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line.startswith("deb "):
                continue
            rest = line[4:].strip()
            if rest.startswith("["):
                end = rest.find("]")
                if end < 0:
                    continue
                rest = rest[end + 1 :].strip()
            words = rest.split()
            if words:
                found.append(words[0])
    for text in deb822_texts:
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            key = None
            for raw in stanza.splitlines():
                if raw.startswith("#") or not raw.strip():
                    continue
                if raw[0] in " \t" and key:
                    fields[key] += " " + raw.strip()
                    continue
                if ":" in raw:
                    key, value = raw.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").strip().lower() in ("no", "false", "0"):
                continue
            found.extend(fields.get("uris", "").split())
    uris: list[str] = []
    for uri in found:
        uri = uri.rstrip("/")
        if _debian_archive(uri) and uri not in uris:
            uris.append(uri)
    return sorted(uris, key=_mirror_rank)


def detect_mirror(settings: Settings | None = None, etc_apt: Path = Path("/etc/apt")) -> str:
    """The Debian mirror to bootstrap from: settings.asterisk_mirror, else the machine's apt sources."""
    if settings is not None and settings.asterisk_mirror:
        return settings.asterisk_mirror
    list_texts: list[str] = []
    deb822_texts: list[str] = []
    main = etc_apt / "sources.list"
    if main.is_file():
        list_texts.append(main.read_text(errors="replace"))
    d = etc_apt / "sources.list.d"
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if f.suffix == ".list":
                list_texts.append(f.read_text(errors="replace"))
            elif f.suffix == ".sources":
                deb822_texts.append(f.read_text(errors="replace"))
    uris = parse_apt_sources(list_texts, deb822_texts)
    return uris[0] if uris else DEFAULT_MIRROR


# --- building ------------------------------------------------------------------------------------


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    mounts: list[str] = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                mp = line.split()[4].replace("\\040", " ")
                if mp == prefix or mp.startswith(prefix + "/"):
                    mounts.append(mp)
    except OSError:
        pass
    return sorted(mounts, key=len, reverse=True)


def _remove_tree(path: Path) -> None:
    """Remove an (interrupted) root; debootstrap may have left /proc or /sys mounted in it."""
    for mp in _mounts_under(path):
        subprocess.run(["umount", "-l", mp], check=False)
    if _mounts_under(path):
        raise AsteriskInstallError(f"cannot remove {path}: something is still mounted under it")
    shutil.rmtree(path, ignore_errors=True)


def _fix_root(root: Path) -> None:
    """Make the asterisk folders root's and give the root a hosts file."""
    for d in ASTERISK_OWNED_DIRS:
        p = root / d.lstrip("/")
        if p.is_dir() and not p.is_symlink():
            subprocess.run(["chown", "-R", "root:root", str(p)], check=True)
    hosts = root / "etc/hosts"
    if not hosts.exists():
        hosts.write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")


def _needs_fix(root: Path) -> bool:
    etc = root / "etc/asterisk"
    return (etc.is_dir() and etc.stat().st_uid != 0) or not (root / "etc/hosts").exists()


def build_root(root: Path, mirror: str, timeout: float = 1800) -> None:
    """Build the Debian sid root at ``root``, atomically. The caller holds the lock."""
    root.parent.mkdir(parents=True, exist_ok=True)
    # Leftovers of interrupted builds (ours are named .<root>.build-<pid>).
    for stale in root.parent.glob(f".{root.name}.build-*"):
        log.info("removing an interrupted build at %s", stale)
        _remove_tree(stale)
    if shutil.which("debootstrap") is None:
        raise AsteriskInstallError(
            "no asterisk on this machine and debootstrap is missing: apt-get install debootstrap "
            "(or install an 'asterisk' package and use asterisk_mode=system)"
        )
    tmp = root.parent / f".{root.name}.build-{os.getpid()}"
    cmd = [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(PACKAGES),
        SUITE,
        str(tmp),
        mirror,
    ]
    log.info("building the Asterisk root: %s", " ".join(cmd))
    started = time.monotonic()
    logfile = root.parent / f"{root.name}.build.log"
    try:
        with open(logfile, "wb") as out:
            # Its own process group, so an interrupted build stops all of debootstrap's children.
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                proc.wait(timeout=timeout)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        if proc.returncode != 0:
            tail = logfile.read_text(errors="replace").splitlines()[-15:]
            raise AsteriskInstallError(
                f"debootstrap failed (exit {proc.returncode}, mirror {mirror}); see {logfile}:\n"
                + "\n".join(tail)
            )
        if not (tmp / BINARY.relative_to("/")).exists():
            raise AsteriskInstallError(f"debootstrap finished but {BINARY} is missing; see {logfile}")
        _fix_root(tmp)
        if root.exists():  # an unusable leftover (no binary): replace it
            _remove_tree(root)
        tmp.rename(root)
    except BaseException:
        _remove_tree(tmp)
        raise
    log.info("Asterisk root ready at %s in %.0f s", root, time.monotonic() - started)


def ensure_asterisk(settings: Settings) -> AsteriskInstall:
    """Return a usable Asterisk installation, building the Debian sid root when needed (~1 min)."""
    install = locate_asterisk(settings)
    if install.mode == "system":
        check_modules(install)
        return install
    root = install.root
    assert root is not None
    if not install.installed:
        root.parent.mkdir(parents=True, exist_ok=True)
        lock_path = root.parent / f".{root.name}.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building: wait for it
            try:
                if not (root / BINARY.relative_to("/")).exists():
                    build_root(root, detect_mirror(settings))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        install = locate_asterisk(settings)
    elif _needs_fix(root):
        _fix_root(root)  # a root made by hand with the same debootstrap command
    check_modules(install)
    return install


def check_modules(install: AsteriskInstall) -> None:
    """Fail with the package to install when the browser phone's modules are missing."""
    missing = install.missing_modules()
    if missing:
        raise AsteriskInstallError(
            f"Asterisk at {install.binary} lacks {', '.join(missing)} (needed by the browser phone): "
            "install the asterisk-modules package of Asterisk 22 or later"
        )


def upgrade_command(root: Path) -> list[str]:
    """apt inside the root: the newest Asterisk and security fixes of the suite."""
    script = (
        "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -q; "
        "apt-get -y -q -o Dpkg::Options::=--force-confold dist-upgrade; "
        "apt-get -y -q autoremove; apt-get clean"
    )
    return ["chroot", str(root), "/bin/sh", "-c", script]


def upgrade_asterisk(settings: Settings, timeout: float = 1800) -> AsteriskInstall:
    """Bring the Asterisk root up to date (``callcenter asterisk install --upgrade``), under the
    build lock. A running Asterisk keeps the old binary until it is restarted. In system mode the
    machine's own package manager does this (``apt-get upgrade asterisk``)."""
    install = ensure_asterisk(settings)
    if install.mode == "system":
        raise AsteriskInstallError(
            "system mode: upgrade with the machine's package manager (apt-get upgrade)"
        )
    root = install.root
    assert root is not None
    lock_path = root.parent / f".{root.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            proc = subprocess.run(upgrade_command(root), capture_output=True, text=True, timeout=timeout)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if proc.returncode != 0:
        raise AsteriskInstallError(f"upgrading {root} failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
    _fix_root(root)
    return locate_asterisk(settings)
