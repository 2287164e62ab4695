"""A phone that speaks and presses keys: for recordings that must hold sound,
a resident answering a follow-up call with a digit, and second seat / supervisor phones.

:class:`MediaUAS` is a :class:`~asterisk_conf.sipp.SippUAS` running ``sipp/uas_media.xml``:
it answers with PCMA, then plays ``audio`` (Debian's G.711 A-law speech pcap) and/or ``keys``
(``key_actions`` steps, e.g. ``[2000, "2"]``: wait 2 s, press 2) on every call it answers.
"""

from __future__ import annotations

from pathlib import Path

from asterisk_conf.sipp import (
    _REASONS,
    _REJECT,
    _RING_NEVER,
    _RING_WAIT,
    _TALK_TIMED,
    _TALK_WAIT,
    SCENARIOS,
    SippUAS,
)

PCAPS = Path("/usr/share/sip-tester")  # Debian's sip-tester: speech and RFC 2833 key pcaps
SPEECH_PCAP = PCAPS / "g711a.pcap"
_KEY_NAMES = {**{d: d for d in "0123456789"}, "#": "pound", "*": "star"}


def key_actions(steps: list[str | int] | None) -> str:
    """Scenario lines: an int pauses that many ms, a key is played as RFC 2833 events (sipp's
    pcaps share one RTP timestamp, so Asterisk hears only the first key of a call: one key)."""
    lines = []
    for step in steps or []:
        if isinstance(step, int):
            lines.append(f'  <pause milliseconds="{max(1, step)}"/>')
        elif step in _KEY_NAMES:
            pcap = PCAPS / f"dtmf_2833_{_KEY_NAMES[step]}.pcap"
            lines.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
            lines.append('  <pause milliseconds="400"/>')
        else:
            raise ValueError(f"not a DTMF key: {step!r}")
    return "\n".join(lines) + ("\n" if lines else "")


class MediaUAS(SippUAS):
    def __init__(
        self, port: int, *, audio: bool = True, keys: list[str | int] | None = None, **options
    ) -> None:
        super().__init__(port, **options)
        self.audio = audio
        self.keys = keys

    def render_scenario(self, workdir: Path) -> Path:
        text = (SCENARIOS / "uas_media.xml").read_text()
        if self.reject_code is not None:
            code = int(self.reject_code)
            ring = _REJECT.format(code=code, reason=_REASONS.get(code, "Rejected"))
        elif self.ring_ms is None:
            ring = _RING_NEVER
        elif self.ring_ms > 0:
            ring = _RING_WAIT.format(ms=int(self.ring_ms))
        else:
            ring = ""
        after = ""
        if self.keys:
            after += key_actions(self.keys)
        if self.audio:
            # After the keys: a new pcap replaces the one playing.
            after += f'  <nop><action><exec play_pcap_audio="{SPEECH_PCAP}"/></action></nop>\n'
        talk = _TALK_TIMED.format(ms=int(self.talk_ms)) if self.talk_ms else _TALK_WAIT
        text = text.replace("@@RING@@", ring).replace("@@AFTER_ANSWER@@\n", after).replace("@@TALK@@", talk)
        out = workdir / "uas_media.xml"
        out.write_text(text)
        return out
