"""One asyncio loop in a thread of its own, on which the APNs HTTP/2 connections run (baas.push.h2client).

The pipeline's senders are threads; an HTTP/2 connection multiplexes streams only when one event loop owns it.
So each sender thread hands its request to this loop and waits for its answer, and the loop carries every
sender's stream on the one connection.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading


class LoopThread:
    def __init__(self, name: str):
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name=self.name, daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def run(self, coroutine, timeout: float):
        """The coroutine's result, run on the loop; raises TimeoutError when it takes longer than timeout."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._ensure())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"{self.name}: no answer within {timeout} s") from None

    def close(self, cleanup=None) -> None:
        """Run `cleanup()` (a coroutine function, e.g. closing clients) on the loop, then stop it."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return
        if cleanup is not None:
            try:
                asyncio.run_coroutine_threadsafe(cleanup(), loop).result(10)
            except Exception:  # closing is best effort: the connections die with the loop anyway
                pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
