"""Rendering the Asterisk configuration from settings and the database (no Asterisk needed)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from asterisk_conf.installer import chroot_instance_path
from asterisk_conf.render import CONFIG_FILES, clean_name, conf_value, render_config
from callcenter.accounts.models import Account, sip_digest
from callcenter.database import session_scope
from tests.asterisk_conf.conftest import add_rows, make_settings

HOSTILE = 'Evil, "x"; <b>\n[general]\r\nsecret=1\u2028member => PJSIP/x,0'


def _conf(etc: Path, name: str) -> str:
    return (etc / name).read_text()


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(";")]


def test_every_file_is_rendered_into_the_instance(tmp_path, fake_system_install):
    settings = make_settings(tmp_path / "var")
    add_rows(settings)
    etc = render_config(settings, install=fake_system_install)
    instance = settings.asterisk_instance_dir()
    assert etc == instance / "etc"
    for name in CONFIG_FILES:
        assert (etc / name).is_file(), name
    for d in ("lib", "spool", "run", "log", "cache", "data/sounds/zh", "data/moh"):
        assert (instance / d).is_dir(), d

    asterisk_conf = _conf(etc, "asterisk.conf")
    assert f"astetcdir => {instance}/etc" in asterisk_conf
    assert f"astdatadir => {instance}/data" in asterisk_conf
    assert f"astrundir => {instance}/run" in asterisk_conf
    assert f"astmoddir => {fake_system_install.modules_dir}" in asterisk_conf
    assert "runuser" not in "\n".join(_lines(asterisk_conf))

    modules = _conf(etc, "modules.conf")
    assert "autoload = no" in modules
    for m in (
        "chan_pjsip.so",
        "res_pjsip_endpoint_identifier_ip.so",
        "res_pjsip_header_funcs.so",
        "app_queue.so",
        "res_agi.so",
        "app_stack.so",
        "app_chanspy.so",
        "app_mixmonitor.so",
        "pbx_config.so",
    ):
        assert f"load => {m}" in modules

    logger = _conf(etc, "logger.conf")
    assert "queue_log = yes" in logger and "messages =>" in logger
    assert "enable = no" in _conf(etc, "cdr.conf") and "enable = no" in _conf(etc, "cel.conf")
    assert "country = cn" in _conf(etc, "indications.conf")
    rtp = _conf(etc, "rtp.conf")
    assert f"rtpstart = {settings.rtp_start}" in rtp and f"rtpend = {settings.rtp_end}" in rtp


def test_data_dir_links_system_entries_and_keeps_our_sounds(tmp_path, fake_system_install):
    settings = make_settings(tmp_path / "var")
    add_rows(settings)
    render_config(settings, install=fake_system_install)
    data = settings.asterisk_instance_dir() / "data"
    system = fake_system_install.data_dir
    assert os.readlink(data / "firmware") == str(system / "firmware")
    sounds = data / "sounds"
    assert sounds.is_dir() and not sounds.is_symlink()
    assert os.readlink(sounds / "en") == str(system / "sounds" / "en")
    assert (sounds / "zh").is_dir() and not (sounds / "zh").is_symlink()
    # a language that disappears from the system loses its link on the next render
    (system / "sounds" / "en_US_f_Allison").rmdir()
    render_config(settings, install=fake_system_install)
    assert not (sounds / "en_US_f_Allison").is_symlink()


def test_chroot_paths_are_as_asterisk_sees_them(tmp_path, fake_chroot_install):
    settings = make_settings(tmp_path / "var")
    add_rows(settings)
    etc = render_config(settings, install=fake_chroot_install)
    seen = chroot_instance_path(settings.asterisk_instance_dir())
    assert re.fullmatch(r"/srv/cc-[0-9a-f]{10}", str(seen))
    assert fake_chroot_install.instance_path(settings.asterisk_instance_dir()) == seen
    text = _conf(etc, "asterisk.conf")
    assert f"astetcdir => {seen}/etc" in text and f"astlogdir => {seen}/log" in text
    assert f"directory = {seen}/data/moh" in _conf(etc, "musiconhold.conf")
    moh = _conf(etc, "musiconhold.conf")
    assert f"[cc-greeting]\nmode = files\ndirectory = {seen}/data/moh-greeting" in moh
    assert "loop_last = yes" in moh
    data = settings.asterisk_instance_dir() / "data"
    # in-root absolute targets: dangling on the host, valid inside the chroot
    assert os.readlink(data / "firmware") == "/usr/share/asterisk/firmware"
    assert os.readlink(data / "sounds" / "en") == "/usr/share/asterisk/sounds/en"
    # a system zh folder never replaces ours
    assert not (data / "sounds" / "zh").is_symlink()
    assert (
        fake_chroot_install.host_path("/usr/sbin/asterisk") == fake_chroot_install.root / "usr/sbin/asterisk"
    )


def test_manager_conf_binds_loopback_with_the_settings_secret(tmp_path, fake_system_install):
    settings = make_settings(tmp_path / "var", ami_port=15038)
    add_rows(settings)
    etc = render_config(settings, install=fake_system_install)
    text = _conf(etc, "manager.conf")
    lines = _lines(text)
    assert "enabled = yes" in lines
    assert "bindaddr = 127.0.0.1" in lines
    assert "port = 15038" in lines
    assert "[callcenter]" in lines
    assert "secret = secret-from-settings-42" in lines
    assert lines.index("deny = 0.0.0.0/0.0.0.0") < lines.index("permit = 127.0.0.1/255.255.255.255")
    assert "read = system,call,agent" in lines
    # No config or system class: UpdateConfig + Reload would be a shell for the AMI secret.
    assert "write = call,agent,originate,reporting" in lines
    assert not any(ln.startswith("write") and ("config" in ln or "system" in ln) for ln in lines)
    assert "webenabled = no" in lines
    assert oct((etc / "manager.conf").stat().st_mode & 0o777) == "0o640"  # the app and Asterisk's group
    # The engine's own user: the same rights, and only the events it turns into typed events.
    from callcenter.ami.events import ENGINE_EVENTS

    tools, engine = text.split("[callcenter-engine]")
    assert "eventfilter" not in tools  # the doctor and other tools see every event
    engine_lines = _lines(engine)
    # ... with a secret of its own.
    assert f"secret = {settings.ami_engine_secret}" in engine_lines
    assert "secret = secret-from-settings-42" not in engine_lines
    assert "read = system,call,agent" in engine_lines
    assert "write = call,agent,originate,reporting" in engine_lines
    filters = [ln for ln in engine_lines if ln.startswith("eventfilter")]
    assert filters == [f"eventfilter(action(include),name({e})) =" for e in ENGINE_EVENTS] + [
        f"eventfilter(action(exclude),name({e}),header(Channel),method(regex)) = ^Local/[^\\;]*\\;2$"
        for e in ("Newchannel", "Hangup", "SoftHangupRequest")
    ]
    assert {"Newchannel", "Hangup", "AgentCalled", "QueueMemberStatus"} <= set(ENGINE_EVENTS)


def test_secret_is_generated_when_not_configured(tmp_path, fake_system_install):
    settings = make_settings(tmp_path / "var", ami_secret="")
    add_rows(settings)
    etc = render_config(settings, install=fake_system_install)
    assert settings.ami_secret and f"secret = {settings.ami_secret}" in _conf(etc, "manager.conf")
    assert (tmp_path / "var" / "secrets.json").exists()


def test_pjsip_trunks_and_seats(tmp_path, fake_system_install):
    settings = make_settings(tmp_path / "var", sip_port=15060, carrier_match="10.0.0.0/8,127.0.0.1")
    add_rows(
        settings,
        seats=[
            {
                "username": "zhang",
                "display_name": "张三",
                "extension": "1001",
                "sip_password": "pw;1",
                "sip_contact": "sip:seat1001@127.0.0.1:15081",
            },
            {"username": "li", "display_name": "李四", "extension": "1002", "sip_password": "pw2"},
            {"username": "gone", "display_name": "离职", "extension": "1003", "active": False},
            {"username": "boss", "display_name": "主管", "extension": "1009", "role": "supervisor"},
        ],
    )
    etc = render_config(settings, install=fake_system_install)
    text = _conf(etc, "pjsip.conf")
    assert "bind = 127.0.0.1:15060" in text
    assert "endpoint_identifier_order = username,ip" in text
    assert "match = 10.0.0.0/8,127.0.0.1" in text
    assert "match = 127.0.0.2" in text
    # the trunks can never be matched by a From user named "carrier" or "trunk12345"
    for trunk, ctx in (("carrier", "from-carrier"), ("trunk12345", "from-12345")):
        block = text.split(f"[{trunk}]\ntype = endpoint\n", 1)[1].split("\n\n", 1)[0]
        assert f"context = {ctx}" in block and "identify_by = ip" in block
        assert "allow = ulaw,alaw" in block and "direct_media = no" in block
    assert "[seat1001]" in text and "[seat1002]" in text
    assert "seat1003" not in text
    # A supervisor with an extension has a phone: listen-in rings it.
    assert "[seat1009]" in text
    assert 'callerid = "张三" <1001>' in text
    # Only the digest of a seat's SIP password is in the file (and in the database).
    assert "pw;1" not in text and "pw\\;1" not in text and "pw2" not in text
    auth = text.split("[seat1001]\ntype = auth\n", 1)[1].split("\n\n", 1)[0]
    assert auth.splitlines() == [
        "auth_type = digest",
        "username = seat1001",
        "realm = callcenter",
        f"password_digest = md5:{sip_digest('seat1001', 'callcenter', 'pw;1')}",
    ]
    assert "contact = sip:seat1001@127.0.0.1:15081" in text
    seat1002 = text.split("[seat1002]\ntype = aor", 1)[1].split("\n\n", 1)[0]
    # Several phones per seat (a desk phone and a softphone)
    assert (
        "contact =" not in seat1002 and "max_contacts = 3" in seat1002 and "remove_existing = yes" in seat1002
    )
    # A seat's phone is called back over the transport it registered on.
    seat_endpoint = text.split("[seat1002]\ntype = endpoint\n", 1)[1].split("\n\n", 1)[0]
    assert "transport =" not in seat_endpoint
    # UDP and TCP on the same address; no certificate, no TLS transport
    assert "[transport-tcp]\ntype = transport\nprotocol = tcp\nbind = 127.0.0.1:15060" in text
    assert "transport-tls" not in text and "external_media_address" not in text


def test_hostile_names_cannot_break_the_config(tmp_path, fake_system_install):
    settings = make_settings(tmp_path / "var")
    add_rows(
        settings,
        queues=[{"name": "hotline", "title": HOSTILE}],
        seats=[
            {
                "username": "evil",
                "display_name": HOSTILE,
                "extension": "1001",
                "sip_password": "a\nb;c",
                "sip_contact": "sip:x@127.0.0.1:5060\n[evil]",
            },
            {"username": "x", "display_name": "y", "extension": "10;01"},
        ],
        dids=[
            {"number": "96345", "queue_name": "hotline"},
            {"number": "1,2", "queue_name": "hotline"},
            {"number": "777", "queue_name": "nosuchqueue"},
        ],
    )
    etc = render_config(settings, install=fake_system_install)
    queues = _conf(etc, "queues.conf")
    hotline = queues.split("[hotline]", 1)[1].split("\n[", 1)[0]
    members = [line for line in hotline.splitlines() if line.startswith("member =>")]
    assert len(members) == 1
    fields = members[0].split("=>", 1)[1].split(",")
    assert (
        len(fields) == 4
        and fields[0].strip() == "Local/1001@cc-ring-seat/nm"
        and fields[3] == "hint:1001@cc-ring-seat"
    )
    assert fields[2].startswith("Evil x b general secret=1 member")
    assert not set(fields[2]) & set(';,"<>[]\\\n')
    for name in ("queues.conf", "pjsip.conf", "extensions.conf"):
        text = _conf(etc, name)
        assert "[evil]" not in text and "\u2028" not in text and "\r" not in text
        sections = re.findall(r"^\[([^\]]+)\]", text, flags=re.M)
        assert "general" not in sections or name != "pjsip.conf"
    pjsip = _conf(etc, "pjsip.conf")
    assert f'callerid = "{fields[2]}" <1001>' in pjsip
    assert "ab;c" not in pjsip and "ab\\;c" not in pjsip
    assert "contact = sip:x@" not in pjsip  # an invalid contact is dropped, not injected
    assert "10;01" not in pjsip
    ext = _conf(etc, "extensions.conf")
    assert "exten => 96345,1," in ext and "1,2" not in ext and "777" not in ext
    # the hotline, and seat 1001's own queue (a returning caller rings it first)
    assert re.findall(r"^\[([^\]]+)\]", queues, flags=re.M) == ["general", "hotline", "cc-seat-1001"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('<script>alert("x")</script>', "scriptalert(x)/script"),
        ("王秀英", "王秀英"),
        ("a,b;c\nd", "abc d"),
        ("", ""),
        (None, ""),
        ("\u202eabc", "abc"),
    ],
)
def test_clean_name(raw, clean):
    assert clean_name(raw) == clean


def test_conf_value_escapes_semicolon_and_newlines():
    assert conf_value("a;b\nc") == "a\\;bc"


def test_extensions_contract(tmp_path, fake_system_install):
    settings = make_settings(tmp_path / "var", agi_port=14573, trunk12345_priority=7, queue_timeout=240)
    add_rows(
        settings,
        queues=[{"name": "hotline"}, {"name": "elderly"}],
        dids=[{"number": "96345", "queue_name": "hotline"}, {"number": "96346", "queue_name": "elderly"}],
        seats=[
            {"username": "s", "display_name": "s", "extension": "1001"},
            {"username": "t", "display_name": "t", "extension": "100234"},
        ],
    )
    text = _conf(render_config(settings, install=fake_system_install), "extensions.conf")
    assert "exten => 96345,1,Gosub(cc-incoming,s,1(96345,hotline,carrier))" in text
    assert "exten => 96346,1,Gosub(cc-incoming,s,1(96346,elderly,carrier))" in text
    assert "exten => _X.,1,Gosub(cc-incoming,s,1(${EXTEN},hotline,12345))" in text
    key = settings.agi_secret  # the FastAGI server answers only URLs with its key
    agi = f"same => n,AGI(agi://127.0.0.1:14573/incoming?k={key},${{ARG3}},${{ARG1}},${{ARG2}},${{CHANNEL(linkedid)}})"
    assert agi in text
    # Every FastAGI route the dialplan calls carries the key (one without it is refused).
    routes = re.findall(r"AGI\((agi://[^,)]*)", text)
    assert routes and all(f"?k={key}" in url for url in routes), routes
    assert "/missed_callback?k=" in text
    assert 'Set(CC_PRIORITY=${IF($["${ARG3}" = "12345"]?7:0)})' in text
    assert "Playback(cc/welcome)" in text and "Playback(cc/not_in_service)" in text
    assert "Set(QUEUE_PRIO=${CC_PRIORITY})" in text
    assert "Queue(${CC_QUEUE},${CC_QOPTS},,,240)" in text
    # Without a menu the seats ring while the greeting plays (no ringback option "r").
    incoming = text.split("[cc-incoming]", 1)[1].split("\n[", 1)[0]
    assert "Set(CHANNEL(musicclass)=cc-greeting)" in incoming and "Set(CC_QOPTS=t)" in incoming
    greeting = incoming.index("Set(CHANNEL(musicclass)=cc-greeting)")
    assert greeting < incoming.index("n(menu),Playback(cc/welcome)")
    assert 'QUEUE_EXISTS(${CC_QUEUE})}" != "1"' in text
    # every phone the seat registered rings
    assert "exten => _XXXX,1,Dial(${PJSIP_DIAL_CONTACTS(seat${EXTEN})},30)" in text
    assert "exten => 100234,1,Gosub(cc-seat-phones,100234,1)" in text
    assert "exten => 100234,hint,PJSIP/seat100234\n" in text
    assert "exten => 100234,1,Set(CC_RING=${PJSIP_DIAL_CONTACTS(seat100234)})" in text
    carrier = text.split("[from-carrier]", 1)[1].split("\n[", 1)[0]
    # the known numbers come before the catch-all
    assert carrier.index("96345") < carrier.index("_X.")


def test_queues_conf(tmp_path, fake_system_install):
    settings = make_settings(tmp_path / "var")
    add_rows(
        settings,
        queues=[
            {"name": "hotline", "strategy": "ringall", "agent_timeout": 12, "wrapup": 3, "service_level": 20},
            {"name": "odd", "strategy": "nonsense"},
        ],
        seats=[{"username": "a", "display_name": "甲", "extension": "1001", "queues": ["hotline", "odd"]}],
    )
    text = _conf(render_config(settings, install=fake_system_install), "queues.conf")
    hotline = text.split("[hotline]", 1)[1].split("\n[", 1)[0]
    for line in (
        "strategy = ringall",
        "timeout = 12",
        "wrapuptime = 3",
        "servicelevel = 20",
        "joinempty = yes",
        "leavewhenempty = no",
        "ringinuse = no",
        "announce-frequency = 0",
        "member => Local/1001@cc-ring-seat/nm,0,甲,hint:1001@cc-ring-seat",
    ):
        assert line in hotline
    assert "strategy = rrmemory" in text.split("[odd]", 1)[1]


def _section(text: str, name: str, kind: str) -> str:
    """The body of ``[name]`` whose ``type = kind``."""
    for block in re.split(r"\n(?=\[)", text):
        if block.startswith(f"[{name}]") and f"type = {kind}" in block:
            return block
    raise AssertionError(f"no [{name}] {kind}")


def test_browser_seats_speak_webrtc_over_the_loopback_websocket(tmp_path, fake_system_install):
    settings = make_settings(tmp_path / "var", asterisk_http_port=18123)
    add_rows(
        settings,
        seats=[
            {"username": "desk", "extension": "1001", "sip_password": "pw-desk-1"},
            {"username": "web", "extension": "1002", "sip_password": "pw-web-1", "phone": "browser"},
        ],
    )
    etc = render_config(settings, install=fake_system_install)
    http = _lines(_conf(etc, "http.conf"))
    assert "enabled = yes" in http and "bindaddr = 127.0.0.1" in http and "bindport = 18123" in http
    modules = _conf(etc, "modules.conf")
    for m in ("res_http_websocket.so", "res_pjsip_transport_websocket.so", "res_srtp.so", "res_crypto.so"):
        assert f"load => {m}" in modules
    assert "load => codec_opus_open_source.so" in modules
    rtp = _lines(_conf(etc, "rtp.conf"))
    assert "icesupport = yes" in rtp and not any(line.startswith("stunaddr") for line in rtp)
    pjsip = _conf(etc, "pjsip.conf")
    ws = _section(pjsip, "transport-ws", "transport")
    assert "protocol = ws" in ws
    web = _lines(_section(pjsip, "seat1002", "endpoint"))
    assert "webrtc = yes" in web and "transport = transport-ws" in web
    assert "allow = alaw,ulaw,opus" in web
    desk = _lines(_section(pjsip, "seat1001", "endpoint"))
    # A desk phone's endpoint has no fixed transport: it is called back over the one it used.
    assert not any(line.startswith(("transport", "webrtc")) for line in desk)
    assert (settings.asterisk_instance_dir() / "lib" / "keys").is_dir()  # res_crypto's key folder


def test_tls_transport_and_nat(tmp_path, fake_chroot_install):
    """TLS listens when a certificate and key are there (copied into the instance, so a chrooted
    Asterisk reads them); the NAT settings go on every transport."""
    tls = tmp_path / "tls"
    tls.mkdir()
    (tls / "sip.crt").write_text("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
    (tls / "sip.key").write_text("-----BEGIN PRIVATE KEY-----\ny\n-----END PRIVATE KEY-----\n")
    settings = make_settings(
        tmp_path / "var",
        sip_host="0.0.0.0",
        sip_tls_port=15061,
        sip_tls_cert=str(tls / "sip.crt"),
        sip_tls_key=str(tls / "sip.key"),
        sip_external_media_address="203.0.113.7",
        sip_external_signaling_address="sip.example.org",
        sip_local_net=["192.168.10.0/24", "10.1.2.3/8"],
    )
    add_rows(settings)
    etc = render_config(settings, install=fake_chroot_install)
    text = _conf(etc, "pjsip.conf")
    instance = chroot_instance_path(settings.asterisk_instance_dir())
    block = text.split("[transport-tls]\n", 1)[1].split("\n\n", 1)[0]
    assert "protocol = tls" in block and "bind = 0.0.0.0:15061" in block
    assert f"cert_file = {instance}/lib/tls/sip.crt" in block
    assert f"priv_key_file = {instance}/lib/tls/sip.key" in block
    key = settings.asterisk_instance_dir() / "lib" / "tls" / "sip.key"
    assert (
        key.read_text().startswith("-----BEGIN PRIVATE KEY") and (key.stat().st_mode & 0o777) == 0o640
    )  # the owner and Asterisk's group
    for transport in ("transport-udp", "transport-tcp", "transport-tls"):
        block = text.split(f"[{transport}]\n", 1)[1].split("\n\n", 1)[0]
        assert "external_media_address = 203.0.113.7" in block
        assert "external_signaling_address = sip.example.org" in block
        assert "local_net = 192.168.10.0/24\nlocal_net = 10.0.0.0/8" in block
    # TLS off again: the transport and the copied key go
    settings.sip_tls_port = 0
    text = _conf(render_config(settings, install=fake_chroot_install), "pjsip.conf")
    assert "transport-tls" not in text and not key.exists()


@pytest.mark.parametrize(
    "field,value",
    [("sip_local_net", ["192.168.1.0/24;x"]), ("sip_external_media_address", "1.2.3.4\n[evil]")],
)
def test_bad_nat_settings_are_refused(tmp_path, fake_system_install, field, value):
    settings = make_settings(tmp_path / "var", **{field: value})
    add_rows(settings)
    with pytest.raises(ValueError):
        render_config(settings, install=fake_system_install)


def test_a_malformed_stored_digest_is_not_rendered(tmp_path, fake_system_install):
    settings = make_settings(tmp_path / "var")
    add_rows(settings, seats=[{"username": "zhang", "extension": "1001", "sip_password": "pw"}])
    with session_scope(settings) as s:
        seat = s.get(Account, 1)
        assert seat is not None and seat.sip_digest == sip_digest("seat1001", "callcenter", "pw")
        seat.sip_digest = "0" * 31 + "\n[x]"
        s.add(seat)
        s.commit()
    text = _conf(render_config(settings, install=fake_system_install), "pjsip.conf")
    auth = text.split("[seat1001]\ntype = auth\n", 1)[1].split("\n\n", 1)[0]
    # Nobody can register: a random password stands in, the bad value goes nowhere.
    assert "password_digest" not in auth and "[x]" not in text
    assert re.search(r"^password = [A-Za-z0-9_-]{32}$", auth, flags=re.M)
