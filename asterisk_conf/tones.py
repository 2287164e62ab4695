"""Test tones for proving that audio really flows: a caller that speaks a pure tone (a G.711 RTP
pcap for sipp's ``play_pcap_audio``, a WAV for Chromium's fake microphone) and a Goertzel
detector that says how much of a recording's energy sits at one frequency.

Shipped with the product because the end-to-end tests and ``benchmarks/bench_webrtc.py`` both
use it (as ``sipp_media.py`` is); no numpy needed.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 8000
FRAME = 160  # 20 ms of G.711 at 8 kHz
_BIAS = 0x84
_CLIP = 32635


def _ulaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 µ-law (ITU-T G.711)."""
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone_samples(hz: float, seconds: float, rate: int = RATE, amplitude: float = 0.3) -> list[int]:
    n = int(seconds * rate)
    return [int(amplitude * 32767 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n)]


def ulaw_bytes(samples: list[int]) -> bytes:
    """Raw 8 kHz G.711 µ-law (sipp's ``rtp_stream`` plays such a file, looped)."""
    return bytes(_ulaw(s) for s in samples)


def write_tone_wav(path: Path, hz: float, seconds: float, rate: int = 48000) -> Path:
    """A mono 16-bit WAV of a sine (Chromium's --use-file-for-fake-audio-capture loops it)."""
    samples = tone_samples(hz, seconds, rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return path


def write_tone_pcap(path: Path, hz: float, seconds: float, ssrc: int = 0x1234ABCD) -> Path:
    """A pcap of RTP packets (PCMU, payload type 0, 20 ms each) carrying a sine, for sipp's
    ``play_pcap_audio`` (it sends the UDP payloads with the captured timing)."""
    samples = tone_samples(hz, seconds)
    payload = ulaw_bytes(samples)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
    for seq, start in enumerate(range(0, len(payload) - FRAME + 1, FRAME)):
        rtp = (
            struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, start & 0xFFFFFFFF, ssrc)
            + payload[start : start + FRAME]
        )
        udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            seq & 0xFFFF,
            0,
            64,
            17,
            0,
            bytes([10, 0, 0, 1]),
            bytes([10, 0, 0, 2]),
        )
        frame = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp
        usec = seq * 20000
        out += struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return path


def read_wav(path: Path) -> tuple[list[int], int]:
    """The samples (first channel) and rate of a 16-bit WAV such as MixMonitor writes."""
    with wave.open(str(path), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples, expected 16")
    samples = struct.unpack(f"<{len(raw) // 2}h", raw)
    return list(samples[::channels]), rate


def goertzel_power(samples: list[int], rate: int, hz: float) -> float:
    """The power of ``samples`` at ``hz`` (Goertzel), normalised by the block length squared."""
    n = len(samples)
    if n == 0:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n)


def tone_share(samples: list[int], rate: int, hz: float, block: int = 400) -> float:
    """The fraction of blocks (``block`` samples, 50 ms at 8 kHz) in which ``hz`` carries most of
    the block's energy: about 1.0 for a steady tone, about 0.0 for silence, speech or another
    tone. A block counts when the tone's power is at least half the block's mean power."""
    blocks = [samples[i : i + block] for i in range(0, len(samples) - block + 1, block)]
    if not blocks:
        return 0.0
    hits = 0
    for b in blocks:
        energy = sum(x * x for x in b) / len(b)
        if energy < 1000:  # silence (about -45 dBFS)
            continue
        # A pure sine's Goertzel power (per n²) is A²/4, its mean power A²/2.
        if goertzel_power(b, rate, hz) * 2 >= 0.5 * energy:
            hits += 1
    return hits / len(blocks)
