"""``serve --workers N``: one process accepts the connections and deals them to N worker
processes in turn; each worker runs the app (uvicorn) on the connections it is handed.

Why not uvicorn's own ``--workers``: there every worker accepts from the shared listening
socket, and the first one awake takes every connection waiting (asyncio accepts up to the
backlog at once). Clients that keep their connections open (a browser, a load balancer,
``wrk``) then stay unevenly spread for good: measured with ``wrk``'s 32 connections, 23
and 9, 22 and 10, 24 and 8, so the busier worker's clients waited twice as long (p99
150-200 ms against a median of 75-90 ms). Dealt in turn, each worker holds its share, as
Node's cluster module does by default for the same reason.

The accepted socket travels to its worker over a Unix socket pair (``socket.send_fds``,
SCM_RIGHTS). A worker that dies is started again in its place (the connections it held,
or that reached it as it died, are lost; nothing else); workers exit when the accepting
process is gone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import signal
import socket
import time

import uvicorn

from ..errors import UserError

log = logging.getLogger(__name__)
# A worker that exits QUICK_DEATHS times in a row, each within QUICK_DEATH seconds of its
# start, cannot start: serve stops with the reason instead of starting it forever.
QUICK_DEATH, QUICK_DEATHS = 5.0, 3


def supported() -> bool:
    """Whether this platform can pass sockets between processes (any Unix; not Windows)."""
    return hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


def worker_main(make_app, options: dict, channel: socket.socket) -> None:
    """A worker process: the app ``make_app()`` gives, served on the connections that arrive
    on ``channel``."""
    config = uvicorn.Config(make_app(), **options)
    try:
        HandedServer(config, channel).run()
    except KeyboardInterrupt:  # Ctrl-C reaches every process: uvicorn has shut down, and raises it again
        pass


class HandedServer(uvicorn.Server):
    """uvicorn's ``Server`` without a listening socket: its connections come over ``channel``."""

    def __init__(self, config, channel: socket.socket):
        super().__init__(config)
        self.channel = channel

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=[])  # no listener of its own
        loop = asyncio.get_running_loop()
        # The protocol uvicorn's startup gives the connections it accepts, for ours.
        protocol = functools.partial(self.config.http_protocol_class, config=self.config,
                                     server_state=self.server_state, app_state=self.lifespan.state)
        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), self._take, loop, protocol)

    def _take(self, loop, protocol) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self.channel, 64, 64)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        if not data:  # the accepting process is gone: finish what is open, then exit
            loop.remove_reader(self.channel.fileno())
            self.should_exit = True
        for fd in fds:
            conn = socket.socket(fileno=fd)
            conn.setblocking(False)
            loop.create_task(loop.connect_accepted_socket(protocol, conn))


def _start(ctx, index: int, args: tuple) -> tuple[multiprocessing.Process, socket.socket]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    proc = ctx.Process(target=worker_main, args=(*args, theirs), name=f"mnist-logreg-serve-{index}", daemon=False)
    # Started with Ctrl-C ignored (inherited through exec, until uvicorn takes the signal
    # over): a Ctrl-C while a worker still imports would print its traceback, and this
    # process stops the workers anyway, by closing their channels.
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc.start()
    finally:
        signal.signal(signal.SIGINT, before)
    theirs.close()
    return proc, ours


def run(listener: socket.socket, workers: int, make_app, options: dict) -> None:
    """Accept on ``listener`` (bound and listening) and deal each connection to the next of
    ``workers`` worker processes, each serving ``make_app()`` (a picklable callable) with
    uvicorn's ``options``, until SIGINT or SIGTERM."""
    import selectors

    ctx = multiprocessing.get_context("spawn")  # a clean interpreter, as uvicorn's workers
    args = (make_app, options)
    pool = [_start(ctx, i, args) for i in range(workers)]
    # A worker's end of its channel closes when it exits: the channel then reads as ended,
    # and another worker takes its place at once, before a connection is dealt to it.
    events = selectors.DefaultSelector()
    events.register(listener, selectors.EVENT_READ)
    for i, (_, channel) in enumerate(pool):
        events.register(channel, selectors.EVENT_READ, i)

    started = [time.monotonic()] * workers
    quick = [0] * workers  # deaths in a row within QUICK_DEATH seconds of starting

    def replace(i: int) -> None:
        proc, channel = pool[i]
        events.unregister(channel)
        channel.close()
        proc.join(5)
        quick[i] = quick[i] + 1 if time.monotonic() - started[i] < QUICK_DEATH else 0
        if quick[i] >= QUICK_DEATHS:  # it cannot start: say so once, rather than start it forever
            raise UserError(f"serve worker {i} exited {quick[i]} times within {QUICK_DEATH:g} s of starting "
                            f"(last code {proc.exitcode}); stopping")
        log.warning("serve worker %d exited (code %s); starting another", i, proc.exitcode)
        pool[i] = _start(ctx, i, args)
        started[i] = time.monotonic()
        events.register(pool[i][1], selectors.EVENT_READ, i)

    def stop(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, stop)
    turn = 0
    try:
        while True:
            for key, _ in events.select():
                if key.fileobj is not listener:  # a worker's channel: it only ever ends
                    replace(key.data)
                    continue
                try:
                    conn, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                with conn:
                    for _ in range(workers):  # the next worker that takes it
                        i, turn = turn, (turn + 1) % workers
                        try:
                            socket.send_fds(pool[i][1], [b"c"], [conn.fileno()])
                            break
                        except OSError:  # gone since the select
                            replace(i)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, before)
        events.close()
        listener.close()
        for _, channel in pool:
            channel.close()  # each worker finishes its open requests and exits
        for proc, _ in pool:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
