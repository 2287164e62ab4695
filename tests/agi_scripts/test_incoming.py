"""The ``incoming`` route's order of work: the engine is told who calls before Asterisk gets the
variables that let the dialplan go on to the queue."""

from __future__ import annotations

from types import SimpleNamespace

from agi_scripts.incoming import incoming
from callcenter.calls.state import Identified
from callcenter.ivr.routing import CallerFacts


class Request:
    """What the route asks of Asterisk, recorded in ``steps`` beside the engine's hand-over."""

    def __init__(self, steps: list[str]) -> None:
        self.steps = steps
        self.headers = {
            "agi_callerid": "13800000001",
            "agi_arg_1": "12345",
            "agi_arg_2": "12345",
            "agi_arg_3": "hotline",
            "agi_arg_4": "1765000000.42",
        }

    def arg(self, n: int) -> str:
        return self.headers.get(f"agi_arg_{n}", "")

    async def get_variables(self, *names: str) -> list[str | None]:
        return ["GS2026120700042", "楼道灯不亮"]

    async def set_variables(self, values: dict[str, str]) -> None:
        self.steps.append("set " + ",".join(values))


async def test_the_engine_hears_of_a_12345_call_before_asterisk_rings_a_seat(settings):
    steps: list[str] = []
    told: list[Identified] = []

    async def facts(caller: str | None) -> CallerFacts:
        return CallerFacts(resident_id=7)

    def identified(info: Identified) -> None:
        steps.append("identified")
        told.append(info)

    context = SimpleNamespace(
        settings=settings,
        ivr=SimpleNamespace(facts=facts, is_open=lambda did: True),
        calls=SimpleNamespace(identified=identified),
    )
    await incoming(Request(steps), context)
    assert [s.split(" ")[0] for s in steps] == ["identified", "set"]
    assert "CC_ROUTE_OK" in steps[1]
    (info,) = told
    assert (info.linkedid, info.source, info.order_12345, info.summary_12345, info.resident_id) == (
        "1765000000.42",
        "12345",
        "GS2026120700042",
        "楼道灯不亮",
        7,
    )
