"""Render the whole Asterisk configuration from settings and the database.

The instance (``settings.asterisk_instance_dir()``) is self-contained::

    <instance>/etc/      every *.conf (rendered here; nothing is edited by hand)
    <instance>/lib/      astvarlibdir, astdbdir, astkeydir (astdb.sqlite3)
    <instance>/spool/    astspooldir (MixMonitor recordings in spool/monitor)
    <instance>/run/      astrundir (asterisk.ctl, asterisk.pid, our pid file)
    <instance>/log/      astlogdir (messages, queue_log, asterisk.out)
    <instance>/cache/    astcachedir
    <instance>/data/     astdatadir: symlinks to the system data dir's entries, except
      sounds/            a real folder: symlinks to each system language folder, plus
        zh/              our generated Mandarin prompts (sounds.py)
      moh/               our generated hold music (sounds.py)
      moh-greeting/      the welcome then the hold music, heard while the seats ring

Paths written into the files are the paths *as Asterisk sees them*
(:meth:`AsteriskInstall.instance_path`): the host paths in system mode, ``/srv/cc-<hash>/...``
in chroot mode.

Everything taken from the database is sanitised: numbers and queue names must match strict
patterns (rows that do not are skipped with a warning), display names lose control characters
and the characters that mean something in a config line (``; , " < > \\`` ...).

Queue validation: the route (FastAGI) may set ``CCids.QUEUE``; the dialplan checks it with
``QUEUE_EXISTS()`` and falls back to the DID's queue (setting ``CC_FALLBACK=1``) when Asterisk
does not know the queue, so a bad route answer can never strand a call.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel import Session, col, select

from asterisk_conf import sounds
from asterisk_conf.callcontrol_conf import agi_key, callcontrol_context
from asterisk_conf.installer import AsteriskInstall, locate_asterisk
from asterisk_conf.ivr_render import VOICEMAIL_DIR, ivr_context, load_ivr
from callcenter import ids
from callcenter.accounts.models import Account, Phone, QueueMembership
from callcenter.ami.events import ENGINE_EVENTS, ENGINE_EXCLUDED_CHANNELS
from callcenter.config import Settings
from callcenter.database import saved_id, session_scope
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.text import clean_name, no_controls

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
CONFIG_FILES = (
    "asterisk.conf",
    "modules.conf",
    "logger.conf",
    "manager.conf",
    "pjsip.conf",
    "extensions.conf",
    "queues.conf",
    "rtp.conf",
    "features.conf",
    "musiconhold.conf",
    "cdr.conf",
    "cel.conf",
    "indications.conf",
    "ccss.conf",
    "udptl.conf",
    "http.conf",
    "acl.conf",
    "cli.conf",
    "pjproject.conf",
    "codecs.conf",
    "stasis.conf",
    "queuerules.conf",
)
INSTANCE_DIRS = ("etc", "lib", "spool", "run", "log", "cache", "data")
# Our folders inside <instance>/data (never symlinked to the system's).
OWN_SOUNDS_LANG = "zh"
OWN_DATA_DIRS = ("sounds", "moh", "moh-greeting")
QUEUE_OPTIONS = "rt"  # r: ring instead of hold music; t: the seat may transfer (features atxfer)
# A line without a menu: the caller hears the greeting class (the welcome, then hold music)
# while the seats already ring, so no "r".
QUEUE_OPTIONS_GREETING = "t"
STRATEGIES = {"ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear", "wrandom"}

_DIGITS = re.compile(r"[0-9]{1,32}")
_MATCH = re.compile(r"[0-9A-Za-z.:/,_-]+")
_HOST = re.compile(r"[0-9A-Za-z.:_-]+")
_DIGEST = re.compile(r"[0-9a-f]{32}")
_REALM = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The TLS certificate and key, copied into the instance (a chrooted Asterisk sees only that).
TLS_DIR = "lib/tls"
_CONTACT = re.compile(r"sips?:[A-Za-z0-9._~%!$&'()*+=:@\[\]-]+(;[A-Za-z0-9._~=-]+)*")


def conf_value(value: str | None) -> str:
    """A free value (password, secret): one line, ``;`` escaped so it does not start a comment."""
    text = no_controls(str(value or "")).strip()
    return text.replace(";", "\\;")


_UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    value = (value or "").strip()
    if not pattern.fullmatch(value):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


# --- what goes into the files --------------------------------------------------------------------


@dataclass
class SeatConf:
    extension: str
    endpoint: str
    name: str
    # MD5(endpoint:realm:password) as pjsip's password_digest; or, when the seat has none, a
    # random password nobody knows (the endpoint exists, nothing can register as it).
    digest: str
    realm: str
    password: str = ""
    contact: str = ""
    browser: bool = False  # the endpoint is the console's WebRTC phone (Phone.BROWSER)
    # With both kinds of phone (Phone.BOTH): the browser's own WebRTC endpoint, next to the desk
    # phones' ``endpoint``; it signs in with the same digest (its auth's user name is ``endpoint``).
    web_endpoint: str = ""

    @property
    def endpoints(self) -> list[str]:
        """Every endpoint of the seat: its phones all ring for a call (cc-ring-seat)."""
        return [self.endpoint, self.web_endpoint] if self.web_endpoint else [self.endpoint]

    @property
    def interface(self) -> str:
        """The seat as a queue member (see ``ids.seat_interface``)."""
        return ids.seat_interface(self.extension)

    @property
    def state_interface(self) -> str:
        return ids.seat_state_interface(self.extension)


@dataclass
class MemberConf:
    interface: str
    penalty: int
    name: str
    state_interface: str = ""


@dataclass
class QueueConf:
    name: str
    title: str
    strategy: str
    timeout: int
    wrapup: int
    service_level: int
    members: list[MemberConf] = field(default_factory=list)


@dataclass
class DidConf:
    number: str
    queue: str


@dataclass
class DialplanData:
    dids: list[DidConf]
    queues: list[QueueConf]
    seats: list[SeatConf]
    # Supervisors' phones (listen-in rings them); no queue, no [seats] entry
    supervisor_phones: list[SeatConf] = field(default_factory=list)


def load_data(session: Session) -> DialplanData:
    """Read DIDs, queues, seats and memberships, keeping only what is safe to render."""
    queues: dict[str, QueueConf] = {}
    for q in session.exec(select(CallQueue).order_by(CallQueue.name)).all():
        if not ids.QUEUE.fullmatch(q.name or ""):
            log.warning("queue %r skipped: the name must match %s", q.name, ids.QUEUE.pattern)
            continue
        strategy = q.strategy if q.strategy in STRATEGIES else "rrmemory"
        queues[q.name] = QueueConf(
            name=q.name,
            title=clean_name(q.title),
            strategy=strategy,
            timeout=max(1, int(q.agent_timeout or 15)),
            wrapup=max(0, int(q.wrapup or 0)),
            service_level=max(0, int(q.service_level or 0)),
        )

    seats: dict[int, SeatConf] = {}
    accounts = session.exec(
        # Supervisors with an extension get a phone too: listen-in calls ring it.
        select(Account).where(col(Account.role).in_(("seat", "supervisor")), Account.active == True)  # noqa: E712
    ).all()
    for a in sorted(accounts, key=lambda a: a.extension or ""):
        ext = (a.extension or "").strip()
        if not _DIGITS.fullmatch(ext):
            if ext:
                log.warning("seat %r skipped: extension %r is not digits", a.username, ext)
            continue
        contact = (a.sip_contact or "").strip()
        if contact and not _CONTACT.fullmatch(contact):
            log.warning("seat %s: sip_contact %r ignored (not a plain sip: URI)", ext, contact)
            contact = ""
        digest = (a.sip_digest or "").strip().lower()
        realm = (a.sip_realm or "").strip()
        if not (_DIGEST.fullmatch(digest) and _REALM.fullmatch(realm)):
            if digest:
                log.warning("seat %s: stored SIP digest or realm is malformed; set a new password", ext)
            # No password: nobody can register as this seat (a fixed contact still rings it).
            digest, realm = "", ""
        seats[saved_id(a)] = SeatConf(
            extension=ext,
            endpoint=f"{ids.DESK_ENDPOINT_PREFIX}{ext}",
            name=clean_name(a.display_name, fallback=clean_name(a.username, fallback=ext)),
            digest=digest,
            realm=realm,
            password="" if digest else secrets.token_urlsafe(24),
            contact=conf_value(contact),
            browser=a.phone == Phone.BROWSER,
            web_endpoint=f"{ids.BROWSER_ENDPOINT_PREFIX}{ext}" if a.phone == Phone.BOTH else "",
        )

    for m in session.exec(select(QueueMembership).order_by(col(QueueMembership.id))).all():
        seat = seats.get(m.account_id)
        queue = queues.get(m.queue_name)
        if seat is None or queue is None:
            continue
        if any(x.interface == seat.interface for x in queue.members):
            continue
        queue.members.append(
            MemberConf(
                interface=seat.interface,
                penalty=max(0, int(m.penalty or 0)),
                name=seat.name,
                state_interface=seat.state_interface,
            )
        )

    dids: list[DidConf] = []
    for n in session.exec(select(ServiceNumber).order_by(ServiceNumber.number)).all():
        number = (n.number or "").strip()
        if not _DIGITS.fullmatch(number):
            log.warning("service number %r skipped: not digits", n.number)
            continue
        if n.queue_name not in queues:
            log.warning("service number %s skipped: queue %r is not configured", number, n.queue_name)
            continue
        dids.append(DidConf(number=number, queue=n.queue_name))

    supervisors = {a.id for a in accounts if a.role != "seat"}
    return DialplanData(
        dids=dids,
        queues=list(queues.values()),
        seats=[c for i, c in seats.items() if i not in supervisors],
        supervisor_phones=[c for i, c in seats.items() if i in supervisors],
    )


def _address(value: str, what: str) -> str:
    """An IP address or a host name (NAT's external addresses)."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return _checked(re.compile(r"[A-Za-z0-9.-]{1,253}"), value, what)


def _networks(values: list[str]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError as exc:
            raise ValueError(f"invalid sip_local_net entry: {value!r}") from exc
    return out


def sip_context(settings: Settings, instance: Path) -> dict:
    """The SIP transports: UDP (and TCP) on sip_host:sip_port, TLS when a certificate is there,
    and the NAT settings every transport carries. ``instance``: the instance as Asterisk sees it."""
    host = _checked(_HOST, settings.sip_host, "sip_host")
    tls = None
    if settings.sip_tls_files() is not None:
        tls = {
            "port": int(settings.sip_tls_port),
            "cert": f"{instance}/{TLS_DIR}/sip.crt",
            "key": f"{instance}/{TLS_DIR}/sip.key",
        }
    nat = {
        "external_media_address": _address(settings.sip_external_media_address, "sip_external_media_address"),
        "external_signaling_address": _address(
            settings.sip_external_signaling_address, "sip_external_signaling_address"
        ),
        "local_net": _networks(settings.sip_local_net),
    }
    return {
        "host": host,
        "port": int(settings.sip_port),
        "tcp": bool(settings.sip_tcp),
        "tls": tls,
        "nat": nat,
        "realm": _checked(_REALM, settings.sip_realm, "sip_realm"),
        "max_contacts": max(1, int(settings.sip_max_contacts)),
    }


def install_tls_files(settings: Settings, instance_dir: Path) -> None:
    """Copy the TLS certificate and key where Asterisk reads them (the key for the owner and
    Asterisk's group only: lib/ is setgid to that group when Asterisk runs as its own user);
    remove them when TLS is off."""
    target = instance_dir / TLS_DIR
    files = settings.sip_tls_files()
    if files is None:
        if target.exists():
            shutil.rmtree(target)
        return
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o750)
    cert, key = files
    _write(target / "sip.crt", cert.read_text(), 0o644)
    _write(target / "sip.key", key.read_text(), 0o640)
    group = target.parent.stat().st_gid  # lib/: Asterisk's group once it runs as its own user
    for path in (target, target / "sip.crt", target / "sip.key"):
        if path.stat().st_gid != group:
            os.chown(path, -1, group)


def _loopback_for(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "*") else host


def build_context(settings: Settings, install: AsteriskInstall, data: DialplanData) -> dict:
    instance = install.instance_path(settings.asterisk_instance_dir())
    ami_host = _checked(_HOST, settings.ami_host, "ami_host")
    permits = ["127.0.0.1/255.255.255.255"]
    if ami_host not in ("127.0.0.1", "0.0.0.0", "::", "localhost") and re.fullmatch(r"[0-9.]+", ami_host):
        permits.append(f"{ami_host}/255.255.255.255")
    if not (settings.ami_secret and settings.ami_engine_secret and settings.agi_secret):
        raise ValueError("a secret is empty: call Settings.load_secrets() first")
    queue_names = {q.name for q in data.queues}
    trunk_queue = settings.trunk12345_queue
    if trunk_queue not in queue_names:
        # A 12345 call must still reach a seat: the first service number's queue takes it.
        fallback = data.dids[0].queue if data.dids else trunk_queue
        log.warning("trunk12345_queue %r is not a configured queue; using %r", trunk_queue, fallback)
        trunk_queue = fallback
    return {
        "instance": str(instance),
        "install": install,
        "modules_dir": str(install.modules_dir),
        # Asterisk's user's group (the app's user is in it): owns the control socket.
        "pbx_group": _checked(_UNIX_NAME, settings.asterisk_user, "asterisk_user")
        if settings.asterisk_user
        else "",
        "sbin_dir": str(install.binary.parent),
        "data_dir": f"{instance}/data",
        "ami": {
            "host": ami_host,
            "port": int(settings.ami_port),
            "user": clean_name(settings.ami_user, fallback="callcenter"),
            "engine_user": clean_name(settings.ami_engine_user, fallback="callcenter-engine"),
            "engine_events": ENGINE_EVENTS,
            "engine_excluded_channels": ENGINE_EXCLUDED_CHANNELS,
            "secret": conf_value(settings.ami_secret),
            "engine_secret": conf_value(settings.ami_engine_secret),
            "permits": permits,
        },
        "sip": sip_context(settings, instance),
        "rtp": {"start": int(settings.rtp_start), "end": int(settings.rtp_end)},
        "http": {"port": int(settings.asterisk_http_port)},
        "agi_url": f"agi://{_loopback_for(_checked(_HOST, settings.agi_host, 'agi_host'))}"
        f":{int(settings.agi_port)}/incoming?k={agi_key(settings)}",
        "carrier_match": _checked(_MATCH, settings.carrier_match, "carrier_match"),
        "trunk12345_match": _checked(_MATCH, settings.trunk12345_match, "trunk12345_match"),
        "trunk12345_queue": _checked(ids.QUEUE, trunk_queue, "trunk12345_queue"),
        "trunk12345_priority": int(settings.trunk12345_priority),
        "queue_timeout": int(settings.queue_timeout),
        "queue_options": QUEUE_OPTIONS,
        "queue_options_greeting": QUEUE_OPTIONS_GREETING,
        "greeting_class": sounds.GREETING_CLASS,
        "dids": data.dids,
        "queues": data.queues,
        "seats": data.seats,
        "seat_ring_context": ids.SEAT_RING_CONTEXT,
        # Outbound lines, callback key, FastAGI base
        **callcontrol_context(settings),
        "supervisor_phones": data.supervisor_phones,
        "header_12345_order": settings.header_12345_order,
    }


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _symlink(link: Path, target: Path) -> None:
    if link.is_symlink():
        if os.readlink(link) == str(target):
            return
        link.unlink()
    elif link.exists():
        return  # a real file or folder of ours
    link.symlink_to(target)


def link_data_dir(install: AsteriskInstall, instance_dir: Path) -> Path:
    """Make <instance>/data: symlinks to the system data dir, our own sounds/zh and moh."""
    data = instance_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    system = install.host_path(install.data_dir)
    wanted: set[str] = set()
    if system.is_dir():
        for entry in sorted(system.iterdir()):
            if entry.name in OWN_DATA_DIRS:
                continue
            wanted.add(entry.name)
            _symlink(data / entry.name, install.data_dir / entry.name)
    sounds = data / "sounds"
    if sounds.is_symlink():
        sounds.unlink()
    sounds.mkdir(exist_ok=True)
    wanted_sounds: set[str] = set()
    if (system / "sounds").is_dir():
        for entry in sorted((system / "sounds").iterdir()):
            if entry.name == OWN_SOUNDS_LANG:
                continue
            wanted_sounds.add(entry.name)
            _symlink(sounds / entry.name, install.data_dir / "sounds" / entry.name)
    (sounds / OWN_SOUNDS_LANG).mkdir(exist_ok=True)
    (data / "moh").mkdir(exist_ok=True)
    (data / "moh-greeting").mkdir(exist_ok=True)
    # Drop links to entries the system no longer has.
    for folder, keep in ((data, wanted), (sounds, wanted_sounds)):
        for entry in folder.iterdir():
            if entry.is_symlink() and entry.name not in keep:
                entry.unlink()
    return data


def render_config(
    settings: Settings, session: Session | None = None, install: AsteriskInstall | None = None
) -> Path:
    """Render every config file into <instance>/etc and lay out the instance; return the etc dir."""
    if not settings.ami_secret:
        settings.load_secrets()
    install = install or locate_asterisk(settings)
    instance_dir = settings.asterisk_instance_dir()
    for d in INSTANCE_DIRS:
        (instance_dir / d).mkdir(parents=True, exist_ok=True)
    (instance_dir / "spool" / "monitor").mkdir(exist_ok=True)
    (instance_dir / "lib" / "keys").mkdir(exist_ok=True)  # res_crypto reads astkeydir
    link_data_dir(install, instance_dir)
    install_tls_files(settings, instance_dir)

    # Menus, opening hours, returning callers' seats
    (instance_dir / "spool" / VOICEMAIL_DIR).mkdir(exist_ok=True)
    if session is None:
        with session_scope(settings) as s:
            data = load_data(s)
            ivr = load_ivr(s, data)
    else:
        data = load_data(session)
        ivr = load_ivr(session, data)

    ctx = build_context(settings, install, data)
    ctx.update(ivr_context(settings, ctx["instance"], ctx["agi_url"], ivr))
    env = _environment()
    etc = instance_dir / "etc"
    for name in CONFIG_FILES:
        text = env.get_template(name + ".j2").render(**ctx)
        secret = name in ("manager.conf", "pjsip.conf")
        # Secrets: the app and Asterisk's group (etc is setgid to it when Asterisk has its own
        # user, see asterisk_conf.process.own_instance), nobody else.
        _write(etc / name, text, 0o640 if secret else 0o644)
    known = set(CONFIG_FILES)
    for stale in etc.glob("*.conf"):
        if stale.name not in known:
            stale.unlink()
    return etc
