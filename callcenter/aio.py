"""Event loops: uvloop when it is installed (it comes with uvicorn[standard]), else asyncio's.

uvloop's sockets and transports cost less CPU per AMI event and per FastAGI connection; the
code does not depend on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # optional: uvicorn[standard] brings it; plain asyncio without it
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on ``new_event_loop()``."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
