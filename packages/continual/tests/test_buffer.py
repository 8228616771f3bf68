import threading
import time

import pytest
from continual import StreamBuffer


def test_producer_runs_in_its_own_thread_with_bounded_queue():
    produced = []
    threads = set()

    def source():
        for i in range(10):
            threads.add(threading.get_ident())
            produced.append(i)
            yield i

    buf = StreamBuffer(source, buffer_size=2, timeout=5)
    deadline = time.time() + 5
    while len(produced) < 3 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    # nothing consumed yet: the producer filled the queue (2) and holds one item, then blocks
    assert len(produced) == 3
    assert threading.get_ident() not in threads
    assert list(buf) == list(range(10))
    assert buf.get_next_data() is None
    buf.close()


def test_failing_producer_surfaces_in_consumer():
    def source():
        yield 1
        raise OSError("disk gone")

    buf = StreamBuffer(source, buffer_size=1, timeout=5)
    assert buf.get_next_data() == 1
    with pytest.raises(RuntimeError, match="disk gone") as info:
        buf.get_next_data()
    assert isinstance(info.value.__cause__, OSError)


def test_stalled_producer_times_out():
    stop = threading.Event()

    def source():
        yield "a"
        stop.wait(5)

    with StreamBuffer(source, timeout=0.2) as buf:
        assert buf.get_next_data() == "a"
        with pytest.raises(TimeoutError, match="no item"):
            buf.get_next_data()
        stop.set()


def test_read_buffer_drains_and_close_stops():
    buf = StreamBuffer(iter(range(3)), buffer_size=5, timeout=5)
    deadline = time.time() + 5
    items = []
    while len(items) < 3 and time.time() < deadline:
        items += buf.read_buffer()
        time.sleep(0.01)
    assert items == [0, 1, 2]
    endless = StreamBuffer(iter(int, 1), buffer_size=1)
    endless.close(join_timeout=2)
    assert not endless.is_alive
    with pytest.raises(ValueError, match="buffer_size"):
        StreamBuffer([], buffer_size=0)


def test_non_integer_buffer_size_and_negative_timeout_are_refused():
    with pytest.raises(ValueError, match="^buffer_size must be an integer"):
        StreamBuffer([], buffer_size=1.5, start=False)  # used to become a queue of 1
    with pytest.raises(ValueError, match="^timeout must be a finite number"):
        StreamBuffer([], timeout=-1, start=False)  # used to fail only at the first read


def test_reading_after_close_ends_the_stream_instead_of_waiting():
    # after close() a read waited for `timeout` (forever with None) or got a stale item
    stall = threading.Event()

    def source():
        yield "a"
        stall.wait(10)

    buf = StreamBuffer(source, buffer_size=1, timeout=None)
    got, done = [], threading.Event()

    def consume():
        got.extend(buf)
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    deadline = time.time() + 5
    while not got and time.time() < deadline:
        time.sleep(0.01)
    buf.close(join_timeout=0.2)
    assert done.wait(2) and got == ["a"]  # the blocked consumer was released
    assert buf.get_next_data() is None and buf.read_buffer() == []
    stall.set()
    endless = StreamBuffer(iter(int, 1), buffer_size=1, timeout=1)
    assert endless.get_next_data() == 0
    endless.close()
    assert endless.get_next_data() is None and list(endless) == []


def test_reading_a_buffer_that_was_never_started_raises_at_once():
    buf = StreamBuffer(range(3), timeout=None, start=False)
    with pytest.raises(RuntimeError, match="call start"):
        buf.get_next_data()  # waited forever (timeout=None)
    with pytest.raises(RuntimeError, match="call start"):
        buf.read_buffer()
    assert list(buf.start()) == [0, 1, 2]
