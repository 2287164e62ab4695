"""A scripted stand-in for Asterisk's side of a FastAGI connection (tests and benchmarks).

It speaks the real wire protocol over TCP: sends the agi_* headers, then answers each command
the way Asterisk does (``200 result=1 (value)``), from a table of variables.
"""

from __future__ import annotations

import asyncio
import re

from callcenter.config import get_settings

_GET = re.compile(r'^GET VARIABLE "?([^"\s]+)"?$')
_SET = re.compile(r'^SET VARIABLE "?([^"\s]+)"? "((?:[^"\\]|\\.)*)"$')
_MSET = re.compile(r'^EXEC MSet "((?:[^"\\]|\\.)*)"$')  # MSet(a=1,b=2): several at once


def unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def agi_env(script: str, args: list[str] | None = None, env: dict[str, str] | None = None) -> bytes:
    """The header block Asterisk sends first."""
    headers = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": script,
        "agi_channel": "PJSIP/carrier-00000001",
        "agi_language": "zh",
        "agi_uniqueid": "1700000000.1",
        "agi_callerid": "13912345678",
        "agi_calleridname": "",
        "agi_context": "cc-incoming",
        "agi_extension": "s",
        "agi_priority": "7",
        **(env or {}),
    }
    for i, a in enumerate(args or [], 1):
        headers[f"agi_arg_{i}"] = a
    # Asterisk sends header values as they are; a newline in one would end the header block.
    return ("".join(f"{k}: {v.replace(chr(10), ' ')}\n" for k, v in headers.items()) + "\n").encode()


async def answer_commands(
    reader: asyncio.StreamReader, writer, variables: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[dict[str, str], list[str]]:
    """Answer commands as Asterisk would until the script closes; return (variables set, lines)."""
    variables = dict(variables or {})
    set_vars: dict[str, str] = {}
    sent: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            raw = await reader.readline()
            if not raw:
                break
            line = raw.decode().rstrip("\n")
            sent.append(line)
            if m := _GET.match(line):
                value = variables.get(m.group(1))
                writer.write(b"200 result=0\n" if value is None else f"200 result=1 ({value})\n".encode())
            elif m := _SET.match(line):
                set_vars[m.group(1)] = unquote(m.group(2))
                writer.write(b"200 result=1\n")
            elif m := _MSET.match(line):
                for pair in unquote(m.group(1)).split(","):
                    name, _, value = pair.partition("=")
                    set_vars[name] = value
                writer.write(b"200 result=0\n")
            else:
                writer.write(b"510 Invalid or unknown command\n")
            await writer.drain()
    return set_vars, sent


async def run_agi_call(
    host: str,
    port: int,
    script: str,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    variables: dict[str, str] | None = None,
    timeout: float = 5.0,
    key: str | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Play one FastAGI call; return (variables the route set, command lines it sent).

    ``key``: the AGI key the URL carries as Asterisk's dialplan does (None: this process's
    settings' ``agi_secret``; "": none)."""
    key = get_settings().agi_secret if key is None else key
    if key:
        script = f"{script}?k={key}"
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(agi_env(script, args, env))
    await writer.drain()
    try:
        return await answer_commands(reader, writer, variables, timeout)
    finally:
        writer.close()
