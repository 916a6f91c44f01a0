"""A Python `websockets` client for the interoperability tests: connects to the URL given, with
permessage-deflate offered as the library does by default, and prints what it saw as JSON.

Modes: `echo` sends a long, repetitive message to the probe's `echo` command and checks the
answer; `bomb` sends a binary message that inflates past the server's limit and reports the close.
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

TEXT = "the same words, again and again; " * 300


async def main(url: str, mode: str) -> None:
    async with connect(url, max_size=None) as ws:
        seen = {"extensions": ws.response.headers.get("Sec-WebSocket-Extensions")}
        if mode == "echo":
            await ws.send("echo " + TEXT)
            seen["echoed"] = await ws.recv() == TEXT
            await ws.send("echo short")
            seen["short"] = await ws.recv()
        elif mode == "bomb":
            await ws.send(bytes(8 << 20))
            try:
                await ws.recv()
            except ConnectionClosed as closed:
                seen["close"] = closed.rcvd.code if closed.rcvd else None
        print(json.dumps(seen))


asyncio.run(main(sys.argv[1], sys.argv[2]))
