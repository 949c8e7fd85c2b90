"""The shared helper for a real ``bot serve``: free ports, process memory, reading an answer."""

from __future__ import annotations

import mmap
import os
import socket

import pytest

from bot.measure.server import free_port, memory_kib, read_answer, rss_mib


def test_free_port_is_free_and_on_loopback():
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nobody holds it


def test_memory_of_this_process():
    mine = memory_kib()
    assert mine.keys() == memory_kib(os.getpid()).keys()
    assert 0 < mine["VmRSS"] <= mine["VmHWM"]
    assert 0 <= mine["RssFile"] <= mine["VmRSS"]
    # 100 MiB more, touched, shows in the resident memory. A fresh anonymous mapping, not
    # bytearray: malloc may hand back memory earlier tests freed that is still resident.
    before = rss_mib(os.getpid())
    block = mmap.mmap(-1, 100 * 2**20)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    assert rss_mib(os.getpid()) - before > 90
    block.close()


def test_memory_of_no_process_is_unknown():
    assert memory_kib(2**22 + 12345) == {}
    assert rss_mib(2**22 + 12345) is None


def test_an_answer_is_read_from_the_event_stream():
    stream = 'event: heartbeat\ndata: null\n\nevent: complete\ndata: [{"text": "Her grandmother.", "kind": "answer"}]\n'
    assert read_answer(stream) == {"text": "Her grandmother.", "kind": "answer"}
    with pytest.raises(RuntimeError, match="no answer: last event 'error'"):
        read_answer('event: error\ndata: "boom"\n')
    with pytest.raises(RuntimeError, match="no answer"):
        read_answer("")
