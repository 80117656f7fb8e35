"""A TCP proxy that caps what each connection carries, as S3 and CDNs cap one connection:
what a transfer with a server elsewhere meets, without a network. Used by
benches/elsewhere.sh.

    python3 benches/capproxy.py LISTEN_PORT UPSTREAM_PORT MIB_PER_SECOND [down|up] [HOST] [DELAY_MS]

"down" (the default) caps what the server sends, "up" what the client sends. It listens on
HOST (default 127.0.0.1; several separated by commas): an address of this machine that is
not loopback makes the client take the server for one elsewhere. DELAY_MS delays everything
each way (a round trip takes twice that).

A real peer takes a few hundred KiB ahead of the link; this proxy on loopback would take
megabytes (its receive buffer autotunes, and it queues 16 reads). For slow links
(benches/slowlink.sh), CAPPROXY_RCVBUF caps its receive buffer (bytes) and CAPPROXY_QUEUE its
queue (reads of 64 KiB then, not 256 KiB).
"""
import asyncio
import os
import socket
import sys
import time

LISTEN, UPSTREAM = int(sys.argv[1]), int(sys.argv[2])
RATE = float(sys.argv[3]) * 1024 * 1024
UP = len(sys.argv) > 4 and sys.argv[4] == "up"
HOST = sys.argv[5] if len(sys.argv) > 5 else "127.0.0.1"
DELAY = (float(sys.argv[6]) if len(sys.argv) > 6 else 0.0) / 1000
RCVBUF = int(os.environ.get("CAPPROXY_RCVBUF", "0"))
QUEUE = int(os.environ.get("CAPPROXY_QUEUE", "16"))
READ = 64 * 1024 if RCVBUF else 256 * 1024


async def pump(reader, writer, capped):
    """Copies reader to writer, each chunk DELAY after it came (both ways: a round trip
    takes twice DELAY), and the capped way paced at RATE (a connection that sat idle does
    not get to burst)."""
    # A few MiB in flight at most, so a capped sender is held back as by a real link.
    queue = asyncio.Queue(maxsize=QUEUE)

    async def deliver():
        try:
            while (item := await queue.get()) is not None:
                at, chunk = item
                if (wait := at - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    delivering = asyncio.create_task(deliver())
    due = time.monotonic()
    try:
        while chunk := await reader.read(READ):
            now = time.monotonic()
            due = max(due, now) + (len(chunk) / RATE if capped else 0)
            await queue.put((due + DELAY, chunk))
    except OSError:
        pass
    finally:
        await queue.put(None)
        await delivering


async def handle(client_reader, client_writer):
    server_reader, server_writer = await asyncio.open_connection("127.0.0.1", UPSTREAM)
    await asyncio.gather(
        pump(client_reader, server_writer, UP),
        pump(server_reader, client_writer, not UP),
    )


def listening(host):
    """A socket listening on host:LISTEN, its receive buffer capped when asked (the sockets
    it accepts inherit it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if RCVBUF:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    s.bind((host, LISTEN))
    s.listen(128)
    s.setblocking(False)
    return s


async def main():
    servers = [await asyncio.start_server(handle, sock=listening(h)) for h in HOST.split(",")]
    way = "up" if UP else "down"
    print(f"capping each connection at {sys.argv[3]} MiB/s {way}, {DELAY * 1000:g} ms each way, on {HOST}:{LISTEN}", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


asyncio.run(main())
