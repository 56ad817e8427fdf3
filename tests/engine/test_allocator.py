"""The allocator's bounds (accord.engine.allocator), in a fresh interpreter each: glibc
fixes its arena limit once, so the process that sets it must not have made arenas yet."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from accord.engine import allocator

pytestmark = pytest.mark.skipif(allocator._LIBC is None, reason="glibc only")

COUNT_ARENAS = """
import ctypes, os, threading
from accord.engine import allocator
{setup}
libc = ctypes.CDLL("libc.so.6")
start = threading.Barrier(8)
def work():
    start.wait()  # all at once: each meets locked arenas and asks for its own
    for _ in range(300):
        blocks = [ctypes.create_string_buffer(2048) for _ in range(50)]
        del blocks
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
path = "/tmp/accord-malloc-info-%d.xml" % os.getpid()
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = libc.fclose.argtypes = None
f = ctypes.c_void_p(libc.fopen(path.encode(), b"w"))
libc.malloc_info(0, f); libc.fclose(f)
text = open(path).read(); os.unlink(path)
print(text.count("<heap nr="))
"""


def arenas(setup: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", COUNT_ARENAS.format(setup=setup)],
                          capture_output=True, text=True, check=True, env=env, timeout=120)
    return int(done.stdout.strip())


def test_limit_arenas_keeps_threads_to_the_limit() -> None:
    assert arenas("assert allocator.limit_arenas()") == allocator.ARENAS
    assert arenas("assert allocator.limit_arenas(2)") <= 2
    assert arenas("") > 2  # without it, the same threads make arenas of their own


def test_trim_gives_back_and_says_whether_it_did() -> None:
    assert isinstance(allocator.trim(), bool)
