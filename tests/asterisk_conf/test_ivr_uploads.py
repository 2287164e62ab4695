"""An administrator's prompt recording is checked from its header before sox converts it: a
header lying about its length, a low sample rate, a ten-minute recording or a file with no audio
never reach sox (a lying header makes sox write far more than was uploaded)."""

from __future__ import annotations

import io
import struct
import subprocess
import wave
from pathlib import Path
from types import SimpleNamespace

import pytest

from asterisk_conf import ivr_sounds
from asterisk_conf.ivr_sounds import UploadError, mp3_info, store_upload, wav_info
from callcenter.config import Settings
from tests.conftest import require


@pytest.fixture
def upload_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", _env_file=None)


@pytest.fixture
def no_sox(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record every sox run instead of running it: the refusals must come before it."""
    runs: list[list[str]] = []

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        runs.append(list(argv))
        raise AssertionError(f"sox ran on a file that should have been refused: {argv}")

    # Only the module under test sees the stand-in; the tests make their files with the real sox.
    monkeypatch.setattr(ivr_sounds, "subprocess", SimpleNamespace(run=run))
    return runs


def _wav(seconds: float = 1.0, rate: int = 8000, width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x00" * width * int(seconds * rate))
    return buf.getvalue()


def _sox_wav(tmp_path: Path, fmt: list[str], seconds: float, suffix: str = "wav") -> bytes:
    """A real file made by sox (not by this test's own header writer): a tone of ``seconds``."""
    require("sox")
    out = tmp_path / f"made.{suffix}"
    argv = ["sox", "-n", *fmt, str(out), "synth", str(seconds), "sine", "440"]
    subprocess.run(argv, check=True, capture_output=True)
    return out.read_bytes()


def test_a_header_lying_about_its_length_is_refused_before_sox(upload_settings, no_sox):
    good = _wav()
    data_at = good.index(b"data")
    # The data chunk claims an hour of audio; the RIFF size is made to agree with it.
    lying = bytearray(good)
    lying[data_at + 4 : data_at + 8] = struct.pack("<I", 8000 * 2 * 3600)
    with pytest.raises(UploadError, match="length"):
        store_upload(upload_settings, bytes(lying))
    # The RIFF size claims more than was sent.
    longer = bytearray(good)
    longer[4:8] = struct.pack("<I", len(good) * 100)
    with pytest.raises(UploadError, match="length"):
        store_upload(upload_settings, bytes(longer))
    assert no_sox == []
    assert not (upload_settings.data_dir / "prompt_uploads").exists()


def test_a_ten_minute_recording_is_refused_before_sox(upload_settings, no_sox, tmp_path):
    # 10 minutes of 8 kHz 8-bit mono: 4.8 MB, under the 5 MB limit; only its length is wrong.
    data = _sox_wav(tmp_path, ["-r", "8000", "-c", "1", "-b", "8", "-e", "unsigned-integer"], 600)
    assert len(data) < upload_settings.prompt_upload_max_bytes
    with pytest.raises(UploadError, match="between 0.2 and 120 seconds"):
        store_upload(upload_settings, data)
    assert no_sox == []


def test_a_low_sample_rate_and_non_audio_files_are_refused_before_sox(upload_settings, no_sox):
    # 100 Hz declared: sox would write 80 times as many samples at 8 kHz.
    with pytest.raises(UploadError, match="sample rate"):
        store_upload(upload_settings, _wav(seconds=60, rate=100, width=1))
    # A RIFF/WAVE file with no format or audio chunk, an MP3, a PNG, text.
    no_audio = b"RIFF" + struct.pack("<I", 4 + 8 + 8) + b"WAVE" + b"LIST" + struct.pack("<I", 8) + b"INFOjunk"
    with pytest.raises(UploadError, match="no audio"):
        store_upload(upload_settings, no_audio)
    with pytest.raises(UploadError, match="not MPEG audio"):
        store_upload(upload_settings, b"ID3\x04\x00\x00" + b"\x00" * 500)
    for junk in (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "楼道灯不亮".encode() * 50):
        with pytest.raises(UploadError, match="only WAV"):
            store_upload(upload_settings, junk)
    assert no_sox == []


def test_an_honest_recording_is_read_and_converted(upload_settings, tmp_path):
    require("sox")
    data = _sox_wav(tmp_path, ["-r", "16000", "-c", "1", "-b", "16"], 1.5)
    info = wav_info(data)
    assert (info.rate, info.channels, info.bits) == (16000, 1, 16) and abs(info.seconds - 1.5) < 0.01
    sha = store_upload(upload_settings, data)
    with wave.open(str(upload_settings.data_dir / "prompt_uploads" / f"{sha}.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert abs(w.getnframes() / 8000 - 1.5) < 0.01


def _id3(payload: bytes) -> bytes:
    """An ID3v2.3 tag holding ``payload`` (its size in 7-bit "syncsafe" bytes)."""
    size = len(payload)
    return b"ID3\x03\x00\x00" + bytes((size >> s) & 0x7F for s in (21, 14, 7, 0)) + payload


def test_an_honest_mp3_is_walked_and_converted(upload_settings, tmp_path):
    frames = _sox_wav(tmp_path, ["-r", "16000", "-c", "1"], 1.5, suffix="mp3")
    tagged = _id3(b"TIT2\x00\x00\x00\x07\x00\x00\x03hello\x00") + frames
    info = mp3_info(tagged)
    assert info.rate == 16000 and info.channels == 1 and 1.5 <= info.seconds < 1.7
    sha = store_upload(upload_settings, tagged)
    with wave.open(str(upload_settings.data_dir / "prompt_uploads" / f"{sha}.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)


def test_a_long_or_doctored_mp3_is_refused_before_sox(upload_settings, no_sox, tmp_path):
    # Ten minutes at 8 kbit/s: 600 KB, well under the size limit.
    long = _sox_wav(tmp_path, ["-r", "8000", "-c", "1", "-C", "8"], 600, suffix="mp3")
    assert len(long) < upload_settings.prompt_upload_max_bytes
    with pytest.raises(UploadError, match="between 0.2 and 120 seconds"):
        store_upload(upload_settings, long)
    short = _sox_wav(tmp_path, ["-r", "16000", "-c", "1"], 1.0, suffix="mp3")
    # Something else hidden behind the first frames, or an ID3 tag claiming more than was sent.
    with pytest.raises(UploadError, match="not MPEG audio"):
        store_upload(upload_settings, short[:2000] + b"\x89PNG\r\n\x1a\n" + b"\x00" * 4000 + short[2000:])
    lying_tag = bytearray(_id3(b"TIT2") + short)
    lying_tag[6:10] = bytes((0x7F, 0x7F, 0x7F, 0x7F))  # a 256 MB tag
    with pytest.raises(UploadError, match="ID3 tag claims more"):
        store_upload(upload_settings, bytes(lying_tag))
    assert no_sox == []
