"""Benchmark client (runs next to the router, on loopback only). Test scaffolding.

Every connection sends a real TLS ClientHello with the given SNI (made by
Python's ssl module) and waits for the backend's one-byte answer.

    load.py rate  PORT --count N --concurrency C   connect, answer, close; rate and latencies
    load.py hold  PORT --count N                   open N routed connections, print, hold until stdin closes
    load.py burst PORT --count N                   N connects at once

Each mode prints one JSON line. Every loop is bounded by --count and --timeout.
"""

import argparse
import asyncio
import json
import ssl
import statistics
import sys
import time


def client_hello(sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


async def routed(port, hello, timeout):
    """(reader, writer, seconds to the answer) or raises."""
    started = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(hello)
        await writer.drain()
        await asyncio.wait_for(reader.readexactly(1), max(0.1, timeout - (time.monotonic() - started)))
    except BaseException:
        writer.close()
        raise
    return reader, writer, time.monotonic() - started


def _kind(exc):
    return "timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__


async def rate(args, hello):
    latencies, errors = [], {}
    sem = asyncio.Semaphore(args.concurrency)

    async def one():
        async with sem:
            try:
                dummy_reader, writer, seconds = await routed(args.port, hello, args.timeout)
                latencies.append(seconds)
                writer.close()
            except Exception as exc:  # counted, reported
                errors[_kind(exc)] = errors.get(_kind(exc), 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(one() for dummy in range(args.count)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return {"mode": "rate", "port": args.port, "ok": len(latencies), "errors": errors,
            "per_second": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 3) if latencies else None,
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3) if latencies else None}


async def hold(args, hello):
    conns, errors = [], {}
    sem = asyncio.Semaphore(args.concurrency)

    async def one():
        async with sem:
            try:
                conns.append(await routed(args.port, hello, args.timeout))
            except Exception as exc:
                errors[_kind(exc)] = errors.get(_kind(exc), 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(one() for dummy in range(args.count)))
    print(json.dumps({"mode": "hold", "port": args.port, "ok": len(conns), "errors": errors,
                      "seconds": round(time.monotonic() - started, 1)}), flush=True)
    # hold until the orchestrator closes stdin (bounded by --hold)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), args.hold)
    except asyncio.TimeoutError:
        pass
    # still open? a connection the router dropped reads EOF
    alive = 0
    for reader, writer, dummy in conns:
        if not reader.at_eof():
            alive += 1
        writer.close()
    return {"mode": "hold-end", "alive": alive}


async def burst(args, hello):
    results = await asyncio.gather(*(routed(args.port, hello, args.timeout) for dummy in range(args.count)),
                                   return_exceptions=True)
    errors, latencies = {}, []
    for result in results:
        if isinstance(result, BaseException):
            errors[_kind(result)] = errors.get(_kind(result), 0) + 1
        else:
            latencies.append(result[2])
            result[1].close()
    latencies.sort()
    return {"mode": "burst", "port": args.port, "ok": len(latencies), "errors": errors,
            "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else None,
            "max_ms": round(latencies[-1] * 1000, 1) if latencies else None}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["rate", "hold", "burst"])
    parser.add_argument("port", type=int)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--hold", type=float, default=120.0)
    parser.add_argument("--sni", default="proxy.stealth.test")
    args = parser.parse_args()
    if not 0 < args.count <= 50000:
        parser.error("--count must be 1..50000")
    hello = client_hello(args.sni)
    print(json.dumps(asyncio.run({"rate": rate, "hold": hold, "burst": burst}[args.mode](args, hello))), flush=True)


if __name__ == "__main__":
    main()
