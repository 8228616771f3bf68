"""StreamBuffer: a producer thread filling a bounded queue, errors surfacing in the consumer."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._checks import check_count, check_number

__all__ = ["StreamBuffer"]

_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class StreamBuffer:
    """Read a stream in a background thread into a bounded queue.

    The producer thread iterates ``source`` and puts each item in a queue of at most
    ``buffer_size`` items, so reading (for example from an openPMD series or a simulation) overlaps
    with training and never runs more than ``buffer_size`` items ahead. The consumer gets items
    with :meth:`get_next_data` or by iterating the buffer. An exception raised by the producer is
    re-raised in the consumer (as a ``RuntimeError`` chained to it); a producer that delivers
    nothing for ``timeout`` seconds raises ``TimeoutError`` in the consumer instead of hanging.

    Args:
        source: an iterable of items, or a callable returning one (called in the thread).
        buffer_size: maximum number of items waiting in the queue (>= 1).
        timeout: seconds the consumer waits for the next item (None: forever).
        start: start the thread now (else call :meth:`start`).
    """

    def __init__(
        self,
        source: Iterable[Any] | Callable[[], Iterable[Any]],
        buffer_size: int = 3,
        timeout: float | None = 180.0,
        *,
        start: bool = True,
    ) -> None:
        check_count("buffer_size", buffer_size)
        if timeout is not None:
            check_number("timeout", timeout)
        self.source = source
        self.buffer_size = int(buffer_size)
        self.timeout = timeout
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.buffer_size)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="StreamBuffer", daemon=True)
        if start:
            self.start()

    def start(self) -> StreamBuffer:
        """Start the producer thread (once)."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        return self

    def _check_started(self) -> None:
        # reading a never-started buffer waited for ``timeout`` (forever with None)
        if self._thread.ident is None:
            raise RuntimeError(
                "StreamBuffer(start=False) was never started: call start() before reading"
            )

    @property
    def is_alive(self) -> bool:
        """Whether the producer thread is running."""
        return self._thread.is_alive()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            source = self.source() if callable(self.source) else self.source
            for item in source:
                if not self._put(item):
                    return
        except BaseException as exc:  # forwarded to the consumer
            self._put(_Failure(exc))
            return
        self._put(_END)

    def get_next_data(self) -> Any:
        """The next item, or None when the stream is exhausted.

        Raises:
            RuntimeError: the producer raised (the original exception is the ``__cause__``), or
                the buffer was built with ``start=False`` and :meth:`start` was not called.
            TimeoutError: no item arrived within ``timeout`` seconds.
        """
        if self._done:
            return None
        self._check_started()
        try:
            item = self._queue.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(
                f"StreamBuffer: no item from the producer within {self.timeout} s "
                f"(thread alive: {self._thread.is_alive()})"
            ) from None
        if item is _END:
            self._done = True
            return None
        if isinstance(item, _Failure):
            self._done = True
            raise RuntimeError(f"StreamBuffer producer failed: {item.exc!r}") from item.exc
        return item

    def read_buffer(self) -> list[Any]:
        """Every item available right now, without waiting (producer errors are raised)."""
        if not self._done:
            self._check_started()
        items = []
        while not self._done:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _END:
                self._done = True
            elif isinstance(item, _Failure):
                self._done = True
                raise RuntimeError(f"StreamBuffer producer failed: {item.exc!r}") from item.exc
            else:
                items.append(item)
        return items

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self.get_next_data()
            if item is None and self._done:
                return
            yield item

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def close(self, join_timeout: float = 5.0) -> None:
        """Stop the producer and wait for it. Items still queued are dropped and the stream ends:
        reading afterwards gives None (a consumer blocked in :meth:`get_next_data` included)."""
        self._stop.set()
        self._drain()
        if self._thread.ident is not None:
            self._thread.join(join_timeout)
        self._drain()  # an item the producer put while it was stopping
        self._done = True
        try:
            self._queue.put_nowait(_END)  # wakes a consumer waiting in another thread
        except queue.Full:
            pass

    def __enter__(self) -> StreamBuffer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
