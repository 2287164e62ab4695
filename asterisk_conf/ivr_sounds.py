"""The IVR's Mandarin prompts: the menu keys and closed-hours texts from the database, a few
fixed prompts, the digits Asterisk's SayDigits/SayNumber read in Mandarin, and recordings an
administrator uploaded instead of a spoken text.

Same pipeline and "made again only when the text changes" stamps as sounds.py. An uploaded
recording is converted once by sox into ``<data_dir>/prompt_uploads/<sha256>.wav`` and copied
over the spoken prompt; its stamp is ``upload:<sha256>``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from asterisk_conf import sounds
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.errors import UserError
from callcenter.ivr.service import ivr_prompts, uploads

log = logging.getLogger(__name__)

# Fixed IVR prompts (the per-key and hours prompts come from the database).
FIXED: dict[str, str] = {
    "ivr_invalid": "您的输入有误，请重新选择。",
    "vm_intro": "请在提示音后留言，说完请按井号键或挂机。",
    "vm_saved": "您的留言已保存，我们会在工作时间尽快处理。再见。",
    "callback_saved": "已为您登记回电，我们会在工作时间尽快给您回电。再见。",
    "request_limit": "您今天的留言和回电登记次数已满，请在工作时间再来电。再见。",
}
DIGIT_WORDS = dict(zip("0123456789", "零一二三四五六七八九", strict=True))
MAX_UPLOAD_SECONDS = 120


class UploadError(UserError, domain="upload"):
    """An uploaded prompt recording that cannot be used (message shown to the administrator)."""


def digits_dir(settings: Settings) -> Path:
    return sounds.sounds_dir(settings).parent / "digits"


def uploads_dir(settings: Settings) -> Path:
    return settings.data_dir / "prompt_uploads"


def _stamped(wav: Path, digest: str) -> bool:
    stamp = wav.with_name(wav.name + ".sha256")
    return wav.exists() and stamp.exists() and stamp.read_text().strip() == digest


def _stamp(wav: Path, digest: str) -> None:
    wav.with_name(wav.name + ".sha256").write_text(digest + "\n")


def generate_digits(settings: Settings) -> list[Path]:
    """sounds/zh/digits/0.wav … 9.wav, so SayDigits speaks Mandarin with CHANNEL(language)=zh."""
    target = digits_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    made = []
    for digit, word in DIGIT_WORDS.items():
        wav = target / f"{digit}.wav"
        digest = sounds.speech_digest(word, sounds.VOICE)
        if _stamped(wav, digest):
            continue
        sounds.synthesize(word, wav)
        _stamp(wav, digest)
        made.append(wav)
    return made


def store_upload(settings: Settings, data: bytes) -> str:
    """Check and convert an administrator's recording; return its sha256 (the file's name)."""
    if not data:
        raise UploadError("the file is empty")
    if len(data) > settings.prompt_upload_max_bytes:
        raise UploadError(f"the file is larger than {settings.prompt_upload_max_bytes // 1024} KiB")
    if not (data[:4] == b"RIFF" and data[8:12] == b"WAVE"):
        raise UploadError("only WAV files are accepted")
    digest = hashlib.sha256(data).hexdigest()
    target = uploads_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    out = target / f"{digest}.wav"
    if out.exists():
        return digest
    sox = sounds.require_tool("sox", "sox")
    with tempfile.TemporaryDirectory(prefix="cc-upload-") as tmp:
        src = Path(tmp) / "in.wav"
        conv = Path(tmp) / "out.wav"
        src.write_bytes(data)
        proc = subprocess.run(
            [
                sox,
                "-t",
                "wav",
                str(src),
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                str(conv),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise UploadError("the WAV file could not be read")
        with wave.open(str(conv)) as w:
            seconds = w.getnframes() / float(w.getframerate() or 8000)
        if seconds < 0.2 or seconds > MAX_UPLOAD_SECONDS:
            raise UploadError(f"a prompt lasts between 0.2 and {MAX_UPLOAD_SECONDS} seconds")
        shutil.move(str(conv), out)
    return digest


def generate_all(settings: Settings, force: bool = False) -> list[Path]:
    """Every sound Asterisk plays: the base prompts (sounds.py), the IVR's (menus, hours, fixed
    prompts, Mandarin digits) and the hold music; return what was made."""
    made = sounds.generate_prompts(settings, force=force)
    made += generate_ivr_prompts(settings)
    moh = sounds.generate_moh(settings)
    return made + ([moh] if moh else [])


def generate_ivr_prompts(settings: Settings) -> list[Path]:
    """Every prompt of the menus and hours (database), fixed prompts and digits; return what was made."""
    try:
        with session_scope(settings) as s:
            texts = ivr_prompts(s)
            uploaded = uploads(s)
    except SQLAlchemyError as exc:
        # No schema yet (prompts made before `callcenter migrate`): the fixed ones and digits.
        log.warning("menu prompts skipped, the database is not ready: %s", str(exc).splitlines()[0])
        texts, uploaded = {}, {}
    spoken = {name: text for name, text in texts.items() if name not in uploaded}
    made = sounds.generate_prompts(settings, prompts={**FIXED, **spoken})
    target = sounds.sounds_dir(settings)
    for name, sha in uploaded.items():
        src = uploads_dir(settings) / f"{sha}.wav"
        wav = target / f"{name}.wav"
        if not src.exists():
            # The recording is gone (another machine's data dir): fall back to the spoken text.
            made += sounds.generate_prompts(settings, prompts={name: texts[name]})
            continue
        if _stamped(wav, f"upload:{sha}"):
            continue
        shutil.copyfile(src, wav)
        _stamp(wav, f"upload:{sha}")
        made.append(wav)
    return made + generate_digits(settings)
