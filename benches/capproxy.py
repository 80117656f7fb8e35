"""A TCP proxy on loopback that caps what each connection carries from the server to the
client, as S3 and CDNs cap one connection: what a download from a server elsewhere meets,
without a network. Used by benches/ranges.sh.

    python3 benches/capproxy.py LISTEN_PORT UPSTREAM_PORT MIB_PER_SECOND
"""
import asyncio
import sys
import time

LISTEN, UPSTREAM = int(sys.argv[1]), int(sys.argv[2])
RATE = float(sys.argv[3]) * 1024 * 1024


async def pump(reader, writer, capped):
    start, sent = time.monotonic(), 0
    try:
        while chunk := await reader.read(256 * 1024):
            writer.write(chunk)
            await writer.drain()
            if capped:
                sent += len(chunk)
                ahead = sent / RATE - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    except OSError:
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer):
    server_reader, server_writer = await asyncio.open_connection("127.0.0.1", UPSTREAM)
    await asyncio.gather(
        pump(client_reader, server_writer, False),
        pump(server_reader, client_writer, True),
    )


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    print(f"capping each connection at {sys.argv[3]} MiB/s on 127.0.0.1:{LISTEN}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
