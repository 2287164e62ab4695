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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class WavInfo:
    """What a WAV file's header declares, checked against the bytes that are really there."""

    format_tag: int
    channels: int
    rate: int
    bits: int
    data_bytes: int

    @property
    def seconds(self) -> float:
        return self.data_bytes / (self.rate * self.channels * max(1, self.bits // 8))


# PCM, IEEE float, A-law, mu-law and the extensible header (sox reads them all).
WAV_FORMATS = frozenset({0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE})
MIN_UPLOAD_RATE = 8000
MAX_UPLOAD_RATE = 48000
MIN_UPLOAD_SECONDS = 0.2


def _looks_like_mp3(data: bytes) -> bool:
    return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


@dataclass(frozen=True)
class Mp3Info:
    """What an MP3 file's frames add up to (every frame header read, none trusted alone)."""

    rate: int
    channels: int
    frames: int
    seconds: float


# MPEG audio frame headers (ISO/IEC 11172-3 and 13818-3): kbit/s by (MPEG-1?, layer) and
# bitrate index 1..14; sample rates by version bits (3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5).
_MP3_KBPS: dict[tuple[bool, int], tuple[int, ...]] = {
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES: dict[int, tuple[int, int, int]] = {
    3: (44100, 48000, 32000),
    2: (22050, 24000, 16000),
    0: (11025, 12000, 8000),
}


def _mp3_frame(header: bytes) -> tuple[int, int, int, int] | None:
    """(frame bytes, samples, sample rate, channels) of one frame header, or None."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate_index, rate_index, padding = header[2] >> 4, (header[2] >> 2) & 3, (header[2] >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved values, or the free format (no frame length in the header)
    mpeg1, layer = version == 3, 4 - layer_bits
    bitrate = _MP3_KBPS[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _MP3_RATES[version][rate_index]
    channels = 1 if header[3] >> 6 == 3 else 2
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4, 384, rate, channels
    samples = 1152 if layer == 2 or mpeg1 else 576
    return samples // 8 * bitrate // rate + padding, samples, rate, channels


def mp3_info(data: bytes) -> Mp3Info:
    """Walk an MP3 file frame by frame before anything converts it: after an ID3v2 tag, frames
    must follow each other to the end (an ID3v1 tag may close it), all at one sample rate, and
    add up to a prompt's length. Anything else in the file is refused."""
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = 0
        for byte in data[6:10]:
            if byte & 0x80:
                raise UploadError("the MP3 file's ID3 tag is damaged")
            size = size << 7 | byte
        pos = 10 + size + (10 if data[5] & 0x10 else 0)
        if pos >= len(data):
            raise UploadError("the MP3 file's ID3 tag claims more than the file holds")
    end = len(data) - 128 if data[-128:-125] == b"TAG" else len(data)
    frames = samples = 0
    rate = channels = 0
    while pos < end:
        frame = _mp3_frame(data[pos : pos + 4])
        if frame is None or (rate and frame[2] != rate):
            raise UploadError("the file is not MPEG audio from start to end")
        length, frame_samples, rate, channels = frame
        if pos + length > end:
            if frames and end - pos < length:  # the encoder's last frame may be cut short
                break
            raise UploadError("the MP3 file's frames do not match its length")
        pos += length
        frames += 1
        samples += frame_samples
    if not frames:
        raise UploadError("the MP3 file has no audio")
    info = Mp3Info(rate, channels, frames, samples / rate)
    if not MIN_UPLOAD_SECONDS <= info.seconds <= MAX_UPLOAD_SECONDS:
        raise UploadError(f"a prompt lasts between {MIN_UPLOAD_SECONDS} and {MAX_UPLOAD_SECONDS} seconds")
    return info


def audio_kind(data: bytes) -> str:
    """The file's type for sox ("wav" or "mp3") once its header or frames are checked."""
    if _looks_like_mp3(data):
        mp3_info(data)
        return "mp3"
    wav_info(data)
    return "wav"


def wav_info(data: bytes) -> WavInfo:
    """Read and check a WAV file's header before anything converts it: the RIFF and data sizes
    must match the bytes received (a header lying about its length is refused), the format must
    be one sox reads, the rate at least 8 kHz (a low declared rate would make sox write far more
    than was uploaded), and the duration within a prompt's limits."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise UploadError("only WAV or MP3 files are accepted")
    if int.from_bytes(data[4:8], "little") + 8 != len(data):
        raise UploadError("the WAV header's length does not match the file")
    fmt: tuple[int, int, int, int] | None = None
    data_bytes = -1
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if body + size > len(data):
            raise UploadError("the WAV header's length does not match the file")
        if chunk == b"fmt " and size >= 16:
            fmt = (
                int.from_bytes(data[body : body + 2], "little"),
                int.from_bytes(data[body + 2 : body + 4], "little"),
                int.from_bytes(data[body + 4 : body + 8], "little"),
                int.from_bytes(data[body + 14 : body + 16], "little"),
            )
        elif chunk == b"data":
            data_bytes = size
        pos = body + size + (size & 1)  # chunks are padded to an even length
    if fmt is None or data_bytes < 0:
        raise UploadError("the WAV file has no audio")
    info = WavInfo(fmt[0], fmt[1], fmt[2], fmt[3], data_bytes)
    if info.format_tag not in WAV_FORMATS or not 1 <= info.channels <= 2 or info.bits not in (8, 16, 24, 32):
        raise UploadError("the WAV file's audio format is not supported")
    if not MIN_UPLOAD_RATE <= info.rate <= MAX_UPLOAD_RATE:
        raise UploadError(
            f"the WAV file's sample rate must be between {MIN_UPLOAD_RATE} and {MAX_UPLOAD_RATE} Hz"
        )
    if not MIN_UPLOAD_SECONDS <= info.seconds <= MAX_UPLOAD_SECONDS:
        raise UploadError(f"a prompt lasts between {MIN_UPLOAD_SECONDS} and {MAX_UPLOAD_SECONDS} seconds")
    return info


def store_upload(settings: Settings, data: bytes) -> str:
    """Check and convert an administrator's recording; return its sha256 (the file's name).
    Everything about the file is checked from its header before sox runs."""
    if not data:
        raise UploadError("the file is empty")
    if len(data) > settings.prompt_upload_max_bytes:
        raise UploadError(f"the file is larger than {settings.prompt_upload_max_bytes // 1024} KiB")
    kind = audio_kind(data)
    digest = hashlib.sha256(data).hexdigest()
    target = uploads_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    out = target / f"{digest}.wav"
    if out.exists():
        return digest
    sox = sounds.require_tool("sox", "sox")
    with tempfile.TemporaryDirectory(prefix="cc-upload-") as tmp:
        src = Path(tmp) / f"in.{kind}"
        conv = Path(tmp) / "out.wav"
        src.write_bytes(data)
        proc = subprocess.run(
            [
                sox,
                "-t",
                kind,
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
                "trim",  # never more than a prompt's length, whatever the header said
                "0",
                str(MAX_UPLOAD_SECONDS),
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
        if seconds < MIN_UPLOAD_SECONDS or seconds > MAX_UPLOAD_SECONDS:
            raise UploadError(f"a prompt lasts between 0.2 and {MAX_UPLOAD_SECONDS} seconds")
        shutil.move(str(conv), out)
    return digest


def generate_all(settings: Settings, force: bool = False) -> list[Path]:
    """Every sound Asterisk plays: the base prompts (sounds.py), the IVR's (menus, hours, fixed
    prompts, Mandarin digits) and the hold music; return what was made."""
    made = sounds.generate_prompts(settings, force=force)
    made += place_recorded_prompts(settings)
    made += generate_ivr_prompts(settings)
    moh = sounds.generate_moh(settings)
    made += [moh] if moh else []
    return made + sounds.build_greeting_class(settings)


def place_recorded_prompts(settings: Settings) -> list[Path]:
    """The base prompts (welcome …) an administrator recorded: prompts.json names them as
    ``upload:<sha256>`` of a file store_upload accepted; copy each over the spoken prompt."""
    made: list[Path] = []
    target = sounds.sounds_dir(settings)
    for name, text in sounds.load_prompts(settings).items():
        if not text.startswith(sounds.UPLOAD_PREFIX):
            continue
        sha = text.removeprefix(sounds.UPLOAD_PREFIX)
        src = uploads_dir(settings) / f"{sha}.wav"
        if not (len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)) or not src.exists():
            raise ValueError(f"prompt {name}: no stored recording {sha!r} (store it with store_upload)")
        wav = target / f"{name}.wav"
        if _stamped(wav, f"upload:{sha}"):
            continue
        shutil.copyfile(src, wav)
        _stamp(wav, f"upload:{sha}")
        made.append(wav)
    return made


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
