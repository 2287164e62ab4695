"""Mandarin prompts, generated offline with espeak-ng and sox.

``espeak-ng -v cmn -w tmp.wav TEXT`` then ``sox tmp.wav -r 8000 -c 1 -b 16 -e signed-integer
out.wav`` into ``<instance>/data/sounds/zh/cc/<name>.wav`` (``Playback(cc/<name>)`` with
``CHANNEL(language)=zh``). The texts are :data:`PROMPTS`, overridden by
``<data_dir>/prompts.json``. A ``<name>.wav.sha256`` next to each file records what it was made
from; a prompt is made again only when its text (or voice) changes.

The hold music (``<instance>/data/moh/``) is a short soft chime made by sox.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

from callcenter.config import Settings

VOICE = "cmn"
# espeak-ng's Mandarin at its default 175 words a minute speaks about 2.5 syllables a second,
# slower than a person reads a notice (4 to 5); 300 gives about 4, which still suits elderly callers.
SPEED_WPM = 300
# On a line without a menu the seats ring while the welcome plays (the hold music class
# GREETING_CLASS begins with it): one short sentence, the emergency numbers in it, under 6 s.
GREETING_CLASS = "cc-greeting"
GREETING_MAX_S = 6.0
# A prompt whose text in prompts.json is "upload:<sha256>" is an administrator's recording
# (stored by ivr_sounds.store_upload), played instead of a synthetic voice.
UPLOAD_PREFIX = "upload:"
PROMPTS: dict[str, str] = {
    "welcome": "您好，社区服务热线。紧急情况请拨幺幺零、幺幺九、幺二零。",
    "not_in_service": "您拨打的号码暂不提供服务，谢谢。",
    # Callbacks and follow-up calls
    "callback_offer": "如不想继续等待，请按一键，挂机后我们会按您的排队顺序给您回电。",
    "callback_ok": "好的，座席空闲后我们会给您回电，请保持电话畅通。再见。",
    "callback_hello": "您好，这里是安宁区社区服务热线，您刚才请我们回电，正在为您接通座席，请稍候。",
    "followup_ask": (
        "您好，这里是安宁区社区服务热线回访。请您对本次服务进行评价：非常满意请按一，满意请按二，"
        "一般请按三，不满意请按四，非常不满意请按五。"
    ),
    "followup_thanks": "感谢您的评价，再见。",
    # A missed call called back: the resident hears who calls and why before the seat speaks.
    "missed_callback_hello": "您好，这里是社区服务热线。您刚才来电没有接通，现在给您回电。",
}
_PIPELINE = f"espeak-ng -s {SPEED_WPM}/sox 8000 Hz mono s16 trimmed v2"
# A C-major chime, note (Hz) and length (s); silence between repetitions.
_MOH_NOTES = ((523.25, 0.5), (659.25, 0.5), (783.99, 0.5), (659.25, 0.5), (587.33, 0.5), (523.25, 1.0))


class SoundToolMissing(RuntimeError):
    """espeak-ng or sox is not installed."""


def require_tool(tool: str, package: str) -> str:
    """The path of a sound tool, or SoundToolMissing saying how to install it."""
    path = shutil.which(tool)
    if path is None:
        raise SoundToolMissing(
            f"{tool} is needed to generate the Mandarin prompts: apt-get install {package}"
        )
    return path


def sounds_dir(settings: Settings) -> Path:
    return settings.asterisk_instance_dir() / "data" / "sounds" / "zh" / "cc"


def moh_dir(settings: Settings) -> Path:
    return settings.asterisk_instance_dir() / "data" / "moh"


def greeting_moh_dir(settings: Settings) -> Path:
    """The hold music class a caller hears while the seats ring: the welcome, then the chime."""
    return settings.asterisk_instance_dir() / "data" / "moh-greeting"


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / float(w.getframerate() or 8000)


def build_greeting_class(settings: Settings) -> list[Path]:
    """Copy the welcome (spoken or recorded) and the chime into the greeting class's folder,
    sorted so the welcome plays first and the chime loops after it (``loop_last``); return
    the files that changed."""
    target = greeting_moh_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for src, name in (
        (sounds_dir(settings) / "welcome.wav", "1-welcome.wav"),
        (moh_dir(settings) / "chime.wav", "2-hold.wav"),
    ):
        out = target / name
        if not src.exists():
            continue
        if out.exists() and out.read_bytes() == src.read_bytes():
            continue
        shutil.copyfile(src, out)
        os.chmod(out, 0o644)
        changed.append(out)
    return changed


def speech_digest(text: str, voice: str) -> str:
    """What a synthesized prompt depends on; a prompt is made again when it changes."""
    return hashlib.sha256(f"{_PIPELINE}\n{voice}\n{text}".encode()).hexdigest()


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed ({proc.returncode}): {proc.stderr.strip()}")


def synthesize(text: str, out: Path, voice: str = VOICE) -> None:
    """Speak ``text`` into an 8 kHz mono 16-bit WAV at ``out``."""
    espeak = require_tool("espeak-ng", "espeak-ng")
    sox = require_tool("sox", "sox")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cc-tts-") as tmp:
        raw = Path(tmp) / "tts.wav"
        conv = Path(tmp) / "out.wav"
        # "--" so a text starting with "-" is not taken for an option
        _run([espeak, "-v", voice, "-s", str(SPEED_WPM), "-w", str(raw), "--", text])
        # The leading and trailing silence espeak-ng adds goes: a caller waits for nothing.
        trim = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
        _run([sox, str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(conv), *trim])
        shutil.move(str(conv), out)


def prompts_file(settings: Settings) -> Path:
    return settings.data_dir / "prompts.json"


def load_prompts(settings: Settings) -> dict[str, str]:
    """The prompt texts: :data:`PROMPTS`, overridden by ``<data_dir>/prompts.json`` when present
    (``{"welcome": "..."}``; how an administrator, or a test wanting a short welcome, changes them)."""
    prompts = dict(PROMPTS)
    path = prompts_file(settings)
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise ValueError(f"{path} must be a JSON object of prompt name -> text")
        prompts.update({k: v for k, v in data.items() if v.strip()})
    return prompts


def generate_prompts(
    settings: Settings, prompts: dict[str, str] | None = None, voice: str = VOICE, force: bool = False
) -> list[Path]:
    """Make every prompt whose text changed; return the files (re)generated."""
    prompts = load_prompts(settings) if prompts is None else prompts
    target = sounds_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for name, text in prompts.items():
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"bad prompt name {name!r}")
        if text.startswith(UPLOAD_PREFIX):
            continue  # a recording stands in for the text (ivr_sounds.place_recorded_prompts)
        wav = target / f"{name}.wav"
        stamp = target / f"{name}.wav.sha256"
        digest = speech_digest(text, voice)
        if not force and wav.exists() and stamp.exists() and stamp.read_text().strip() == digest:
            continue
        synthesize(text, wav, voice)
        stamp.write_text(digest + "\n")
        made.append(wav)
    return made


def generate_moh(settings: Settings) -> Path | None:
    """A soft chime as the default hold music (made once)."""
    target = moh_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    out = target / "chime.wav"
    if out.exists():
        return None
    sox = require_tool("sox", "sox")
    with tempfile.TemporaryDirectory(prefix="cc-moh-") as tmp:
        parts = []
        for i, (freq, length) in enumerate(_MOH_NOTES):
            p = Path(tmp) / f"{i}.wav"
            fade = min(0.05, length / 4)
            _run(
                [sox, "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(p)]
                + [
                    "synth",
                    str(length),
                    "sine",
                    str(freq),
                    "fade",
                    "q",
                    str(fade),
                    str(length),
                    str(length / 2),
                ]
                + ["vol", "0.15"]
            )
            parts.append(str(p))
        gap = Path(tmp) / "gap.wav"
        _run(
            [
                sox,
                "-n",
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                str(gap),
                "trim",
                "0",
                "2",
            ]
        )
        tmp_out = Path(tmp) / "chime.wav"
        _run([sox, *parts, str(gap), str(tmp_out)])
        shutil.move(str(tmp_out), out)
    os.chmod(out, 0o644)
    return out
