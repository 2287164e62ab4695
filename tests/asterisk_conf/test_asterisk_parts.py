"""The installer's mirror detection, prompts, sipp scenarios, the command line (no Asterisk needed)."""

from __future__ import annotations

import argparse
import os
import subprocess
import wave
from pathlib import Path

import pytest

from asterisk_conf import ivr_sounds, process, sounds
from asterisk_conf.installer import (
    DEFAULT_MIRROR,
    WEBRTC_MODULES,
    AsteriskInstall,
    AsteriskInstallError,
    check_modules,
    detect_mirror,
    locate_asterisk,
    parse_apt_sources,
)
from asterisk_conf.sipp import quote_display_name, render_uac, render_uas
from asterisk_conf.tones import goertzel_power, tone_samples, tone_share, write_tone_pcap
from callcenter.config import Settings
from tests.conftest import missing_part
from tests.conftest import require as need

DEBIAN12_DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_mirror_from_deb822_sources():
    assert parse_apt_sources([], [DEBIAN12_DEB822]) == ["http://deb.debian.org/debian"]


def test_mirror_from_sources_list_with_options_and_comments():
    text = """\
# deb http://commented.example/debian sid main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirrors.tuna.tsinghua.edu.cn/debian/ bookworm main
deb http://security.debian.org/debian-security bookworm-security main
deb-src http://deb.debian.org/debian bookworm main
deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main
"""
    assert parse_apt_sources([text], []) == ["http://mirrors.tuna.tsinghua.edu.cn/debian"]


def test_mirror_prefers_debian_org_and_skips_disabled_and_non_debian():
    deb822 = """\
Types: deb
URIs: http://archive.ubuntu.com/ubuntu
Suites: noble
Components: main

Types: deb
URIs: http://ftp.cn.debian.org/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb deb-src
URIs: http://snapshot.debian.org/archive/debian/20250520T000000Z
Suites: bookworm
Components: main
"""
    listed = "deb http://mirror.local/debian bookworm main\ndeb http://deb.debian.org/debian bookworm main\n"
    assert parse_apt_sources([listed], [deb822]) == [
        "http://deb.debian.org/debian",
        "http://mirror.local/debian",
        "http://snapshot.debian.org/archive/debian/20250520T000000Z",
    ]


def test_detect_mirror_reads_etc_apt_and_the_setting_wins(tmp_path):
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list.d" / "debian.sources").write_text(DEBIAN12_DEB822)
    (apt / "sources.list.d" / "nodesource.sources.disabled").write_text("Types: deb\nURIs: http://x/debian\n")
    assert detect_mirror(None, etc_apt=apt) == "http://deb.debian.org/debian"
    assert (
        detect_mirror(Settings(asterisk_mirror="http://my/debian", _env_file=None), etc_apt=apt)
        == "http://my/debian"
    )
    (apt / "sources.list.d" / "debian.sources").unlink()
    (apt / "sources.list").write_text("deb http://archive.ubuntu.com/ubuntu noble main\n")
    assert detect_mirror(None, etc_apt=apt) == DEFAULT_MIRROR


def test_locate_chroot_and_bad_modes(tmp_path, monkeypatch):
    s = Settings(asterisk_mode="chroot", asterisk_root=tmp_path / "nothing-here", _env_file=None)
    install = locate_asterisk(s)
    assert install.mode == "chroot" and install.root == tmp_path / "nothing-here" and not install.installed
    assert install.binary == Path("/usr/sbin/asterisk")
    with pytest.raises(AsteriskInstallError):
        locate_asterisk(Settings(asterisk_mode="docker", _env_file=None))
    monkeypatch.setattr("asterisk_conf.installer._system_binary", lambda: None)
    with pytest.raises(AsteriskInstallError, match="no asterisk binary"):
        locate_asterisk(Settings(asterisk_mode="system", _env_file=None))
    assert (
        locate_asterisk(Settings(asterisk_mode="auto", asterisk_root=tmp_path, _env_file=None)).mode
        == "chroot"
    )


def test_chroot_command_uses_a_private_mount_namespace(tmp_path):
    s = Settings(data_dir=tmp_path / "var", asterisk_user="", _env_file=None)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    install = AsteriskInstall(
        "chroot", root, Path("/usr/sbin/asterisk"), Path("/m"), Path("/usr/share/asterisk")
    )
    cmd = process.command(s, install)
    assert cmd[:4] == ["unshare", "--mount", "--propagation", "private"]
    script = cmd[-1]
    seen = install.instance_path(s.asterisk_instance_dir())
    assert f"mount --bind {s.asterisk_instance_dir()} {root}{seen}" in script
    assert f"exec chroot {root} /usr/sbin/asterisk -f -n -C {seen}/etc/asterisk.conf" in script
    assert "-U" not in script.split()  # no user of its own configured: the starting user
    if os.geteuid() == 0:
        # Started by root, Asterisk drops to its own user.
        s.asterisk_user = "callcenter-pbx"
        script = process.command(s, install)[-1]
        assert "-f -n -U callcenter-pbx -G callcenter-pbx -C" in script
        s.asterisk_user = ""
    system = AsteriskInstall(
        "system", None, Path("/usr/sbin/asterisk"), Path("/m"), Path("/usr/share/asterisk")
    )
    assert process.command(s, system) == [
        "/usr/sbin/asterisk",
        "-f",
        "-n",
        "-C",
        f"{s.asterisk_instance_dir()}/etc/asterisk.conf",
    ]


def test_status_and_stop_when_nothing_runs(tmp_path):
    s = Settings(
        data_dir=tmp_path / "var",
        ami_secret="x",
        asterisk_mode="chroot",
        asterisk_root=tmp_path / "none",
        _env_file=None,
    )
    assert process.stop(s) is False
    st = process.status(s)
    assert st["running"] is False and st["pid"] is None and st["mode"] == "chroot"
    # a stale pid file of another program is not taken for Asterisk
    pf = process.pid_file(s)
    pf.parent.mkdir(parents=True)
    pf.write_text("1\n")
    assert process.status(s)["running"] is False
    assert process.stop(s) is False and not pf.exists()


# --- prompts -------------------------------------------------------------------------------------


def test_prompts_are_made_once_and_again_when_the_text_changes(tmp_path):
    need("espeak-ng")
    need("sox")
    s = Settings(data_dir=tmp_path / "var", _env_file=None)
    made = sounds.generate_prompts(s, prompts={"hello": "您好"})
    wav = sounds.sounds_dir(s) / "hello.wav"
    assert made == [wav]
    assert wav == s.asterisk_instance_dir() / "data/sounds/zh/cc/hello.wav"
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 1000
    mtime = wav.stat().st_mtime_ns
    assert sounds.generate_prompts(s, prompts={"hello": "您好"}) == []
    assert wav.stat().st_mtime_ns == mtime
    assert sounds.generate_prompts(s, prompts={"hello": "您好，再见"}) == [wav]
    assert (sounds.sounds_dir(s) / "hello.wav.sha256").read_text().strip()


def test_default_prompts_and_hold_music(tmp_path):
    need("espeak-ng")
    need("sox")
    s = Settings(data_dir=tmp_path / "var", _env_file=None)
    made = ivr_sounds.generate_all(s)
    names = {p.name for p in made}
    assert {"welcome.wav", "not_in_service.wav", "chime.wav"} <= names
    assert "幺幺九" in sounds.PROMPTS["welcome"] and "暂不提供服务" in sounds.PROMPTS["not_in_service"]
    # The greeting class: the welcome first, then the hold music looped.
    greeting = sorted(p.name for p in sounds.greeting_moh_dir(s).iterdir())
    assert greeting == ["1-welcome.wav", "2-hold.wav"]
    assert (sounds.greeting_moh_dir(s) / "1-welcome.wav").read_bytes() == (
        sounds.sounds_dir(s) / "welcome.wav"
    ).read_bytes()
    assert ivr_sounds.generate_all(s) == []


def test_the_default_welcome_is_one_short_sentence_naming_the_emergency_numbers(tmp_path):
    need("espeak-ng")
    need("sox")
    s = Settings(data_dir=tmp_path / "var", _env_file=None)
    sounds.generate_prompts(s, prompts={"welcome": sounds.PROMPTS["welcome"]})
    seconds = sounds.wav_seconds(sounds.sounds_dir(s) / "welcome.wav")
    assert 2.0 < seconds <= sounds.GREETING_MAX_S, seconds
    text = sounds.PROMPTS["welcome"]
    assert all(n in text for n in ("幺幺零", "幺幺九", "幺二零"))
    assert text.count("。") == 2  # a greeting and one sentence with the numbers


def test_a_recorded_welcome_replaces_the_synthetic_one(tmp_path):
    need("espeak-ng")
    need("sox")
    s = Settings(data_dir=tmp_path / "var", _env_file=None)
    s.data_dir.mkdir(parents=True)
    tone = tmp_path / "tone.wav"
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(tone), "synth", "2", "sine", "440"],
        check=True,
    )
    sha = ivr_sounds.store_upload(s, tone.read_bytes())
    sounds.prompts_file(s).write_text(f'{{"welcome": "upload:{sha}"}}', encoding="utf-8")
    ivr_sounds.generate_all(s)
    welcome = sounds.sounds_dir(s) / "welcome.wav"
    assert welcome.read_bytes() == (ivr_sounds.uploads_dir(s) / f"{sha}.wav").read_bytes()
    assert (sounds.greeting_moh_dir(s) / "1-welcome.wav").read_bytes() == welcome.read_bytes()
    sounds.prompts_file(s).write_text('{"welcome": "upload:0000"}', encoding="utf-8")
    with pytest.raises(ValueError, match="no stored recording"):
        ivr_sounds.generate_all(s)


def test_prompts_json_overrides_the_texts(tmp_path):
    need("espeak-ng")
    need("sox")
    s = Settings(data_dir=tmp_path / "var", _env_file=None)
    s.data_dir.mkdir(parents=True)
    sounds.prompts_file(s).write_text('{"welcome": "您好。"}', encoding="utf-8")
    prompts = sounds.load_prompts(s)
    assert prompts["welcome"] == "您好。" and prompts["not_in_service"] == sounds.PROMPTS["not_in_service"]
    sounds.generate_prompts(s)
    with wave.open(str(sounds.sounds_dir(s) / "welcome.wav")) as w:
        assert w.getnframes() / w.getframerate() < 3
    sounds.prompts_file(s).write_text("[1, 2]")
    with pytest.raises(ValueError):
        sounds.load_prompts(s)


def test_missing_tools_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("asterisk_conf.sounds.shutil.which", lambda tool: None)
    s = Settings(data_dir=tmp_path / "var", _env_file=None)
    with pytest.raises(sounds.SoundToolMissing, match="apt-get install espeak-ng"):
        sounds.generate_prompts(s, prompts={"x": "一"})


# --- sipp scenarios ------------------------------------------------------------------------------


def test_display_name_quoting():
    assert quote_display_name('<script>alert("x")</script>') == '"<script>alert(\\"x\\")</script>"'
    assert quote_display_name("a\\b\r\nc") == '"a\\\\b  c"'
    assert quote_display_name("王秀英") == '"王秀英"'


def test_uac_scenario_rendering(tmp_path):
    path = render_uac(
        tmp_path,
        caller_token="[cc_caller]",
        with_name=True,
        header_names=["X-12345-OrderNo", "X-12345-Summary"],
        hold_ms=4000,
    )
    text = path.read_text()
    assert "@@" not in text
    assert "From: [cc_name] <sip:[cc_caller]@[local_ip]:[local_port]>" in text
    assert "      X-12345-OrderNo: [cc_h0]\n      X-12345-Summary: [cc_h1]\n" in text
    assert 'timeout="4000"' in text
    assert "a=rtpmap:101 telephone-event/8000" in text
    bare = render_uac(
        tmp_path, caller_token="[field0]", with_name=False, header_names=[], hold_ms=1
    ).read_text()
    assert "From: <sip:[field0]@" in bare
    # no empty line may end the INVITE's headers early
    invite = bare.split("INVITE sip:", 1)[1].split("Content-Type", 1)[0]
    assert "\n\n" not in invite
    with pytest.raises(ValueError):
        render_uac(
            tmp_path, caller_token="[cc_caller]", with_name=False, header_names=["X-Bad: y\r\nZ"], hold_ms=1
        )


def test_uas_scenario_rendering(tmp_path):
    ring = render_uas(tmp_path, ring_ms=500, talk_ms=None, reject_code=None).read_text()
    assert '<recv request="CANCEL" timeout="500" ontimeout="answer" next="cancelled"/>' in ring
    assert '<recv request="BYE"/>' in ring and "@@" not in ring
    timed = render_uas(tmp_path, ring_ms=0, talk_ms=2000, reject_code=None).read_text()
    assert "CANCEL" not in timed.split('<label id="answer"/>')[0].split("</send>", 1)[1]
    assert '<recv request="BYE" timeout="2000" ontimeout="hangup"/>' in timed
    assert (
        '<recv request="CANCEL" next="cancelled"/>'
        in render_uas(tmp_path, ring_ms=None, talk_ms=None, reject_code=None).read_text()
    )
    assert (
        "SIP/2.0 486 Busy Here" in render_uas(tmp_path, ring_ms=0, talk_ms=None, reject_code=486).read_text()
    )


def test_scenarios_load_in_sipp(tmp_path):
    """sipp parses the rendered scenarios (it checks labels and variables when loading)."""
    sipp = need("sipp")
    for scenario in (
        render_uac(tmp_path, caller_token="[cc_caller]", with_name=True, header_names=["X-A"], hold_ms=10),
        render_uas(tmp_path, ring_ms=100, talk_ms=100, reject_code=None),
    ):
        out = subprocess.run(
            [
                sipp,
                "127.0.0.1:9",
                "-sf",
                str(scenario),
                "-key",
                "cc_caller",
                "1",
                "-key",
                "cc_name",
                "x",
                "-key",
                "cc_h0",
                "v",
                "-m",
                "0",
                "-timeout",
                "1s",
                "-nostdin",
                "-i",
                "127.0.0.1",
                "-p",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stderr
        assert "referenced" not in out.stderr and "rror" not in out.stderr, out.stderr


# --- command line --------------------------------------------------------------------------------


def test_cli_registers_the_asterisk_commands():
    from asterisk_conf.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    for cmd in ("install", "render", "start", "stop", "restart", "status", "reload"):
        args = parser.parse_args(["asterisk", cmd])
        assert callable(args.func)
    assert parser.parse_args(["asterisk", "start", "--timeout", "5"]).timeout == 5


def test_an_asterisk_without_the_webrtc_modules_is_refused(tmp_path):
    modules = tmp_path / "modules"
    modules.mkdir()
    install = AsteriskInstall(
        mode="system", root=None, binary=Path("/usr/sbin/asterisk"), modules_dir=modules, data_dir=tmp_path
    )
    for name in WEBRTC_MODULES:
        if name != "res_srtp.so":
            (modules / name).write_bytes(b"")
    assert install.missing_modules() == ["res_srtp.so"]
    with pytest.raises(AsteriskInstallError, match="res_srtp.so"):
        check_modules(install)
    (modules / "res_srtp.so").write_bytes(b"")
    check_modules(install)


def test_the_real_asterisk_has_the_webrtc_modules():
    install = locate_asterisk(Settings(_env_file=None))
    if not install.installed:
        missing_part("Asterisk is not installed (callcenter asterisk install)")
    assert install.missing_modules() == []


def test_tone_pcap_and_detector(tmp_path):
    samples = tone_samples(1000, 1)
    assert tone_share(samples, 8000, 1000) == 1.0 and tone_share(samples, 8000, 440) == 0.0
    assert tone_share([0] * 8000, 8000, 1000) == 0.0
    assert goertzel_power(samples, 8000, 1000) > 100 * goertzel_power(samples, 8000, 1100)
    pcap = write_tone_pcap(tmp_path / "t.pcap", 1000, 1)
    # pcap header + 50 packets of 20 ms: (16 record header + 14 eth + 20 ip + 8 udp + 12 rtp + 160)
    assert pcap.stat().st_size == 24 + 50 * (16 + 14 + 20 + 8 + 12 + 160)


def test_the_asterisk_root_can_be_upgraded(tmp_path):
    """`callcenter asterisk install --upgrade` runs apt inside the root (not run here: it would
    upgrade the machine's shared root under the other checkouts' running Asterisks)."""
    from asterisk_conf.installer import upgrade_command
    from hotline.cli import build_parser

    cmd = upgrade_command(tmp_path)
    assert cmd[:3] == ["chroot", str(tmp_path), "/bin/sh"]
    assert "apt-get update" in cmd[-1] and "dist-upgrade" in cmd[-1]
    args = build_parser().parse_args(["asterisk", "install", "--upgrade"])
    assert args.upgrade is True


# pthread_exit in the main thread (not exit): the main thread ends, the others run on
_LEADER_EXITS = """
import ctypes, socket, threading, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
threading.Thread(target=time.sleep, args=(60,)).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_process_whose_main_thread_exited_is_alive_while_its_threads_run(tmp_path: Path) -> None:
    """An Asterisk killed with -9 shows its main thread as a zombie (and an empty command line)
    while its other threads are still going down with its AMI port open: process.stop must not
    take it for gone, or the start after it finds the port in use (seen in
    tests/e2e/test_faults.py and benchmarks/bench_faults.py)."""
    import socket
    import sys
    import time

    settings = Settings(data_dir=tmp_path, _env_file=None)
    proc = subprocess.Popen([sys.executable, "-c", _LEADER_EXITS], stdout=subprocess.PIPE, text=True)
    process._children[str(proc.pid)] = proc  # as process.start keeps the Asterisk it started
    process.pid_file(settings).parent.mkdir(parents=True)
    process.pid_file(settings).write_text(f"{proc.pid}\n")
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        deadline = time.monotonic() + 10
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # its port is still open
        assert process._alive(proc.pid)
        assert process._running_pid(settings) == proc.pid
    finally:
        proc.kill()
        proc.wait(10)
    assert not process._alive(proc.pid) and process._running_pid(settings) is None
