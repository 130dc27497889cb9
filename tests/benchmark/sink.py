"""Benchmark backend: accepts, answers the first bytes of each connection with
one byte, then holds the connection until the peer closes it.

Stands in for mtg and the web server behind the router, so that what the
benchmark measures is the router. Test scaffolding only.

    python3 sink.py 127.0.0.1:3128 127.0.0.1:8443
"""

import asyncio
import sys


async def handle(reader, writer):
    try:
        if await reader.read(65536):
            writer.write(b"x")
            await writer.drain()
            while await reader.read(65536):
                pass
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(addresses):
    servers = []
    for address in addresses:
        host, port = address.rsplit(":", 1)
        servers.append(await asyncio.start_server(handle, host, int(port), backlog=65535))
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
