"""``python -m hotline.outbox_workers``: the outbox workers alone, with the settings from the environment.

The engine runs the same workers; this is for a separate sender process (and the restart test)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from callcenter.config import get_settings
from callcenter.database import migrate
from hotline.messaging import MessagingWorkers


async def _main() -> None:
    settings = get_settings()
    migrate(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    workers = MessagingWorkers(settings)
    await workers.start()
    print("outbox workers running", flush=True)
    try:
        await stop.wait()
    finally:
        await workers.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_main())
