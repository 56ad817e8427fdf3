"""GroupCommit: batches from the event loop, committed by one thread, answered in order."""

from __future__ import annotations

import asyncio
import threading

import pytest

from accord.engine.group_commit import GroupCommit, WouldBlock


class Recorder:
    """A commit function that records its batches; it can be held or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.fail_on: int | None = None

    def __call__(self, items: list[int]) -> list[str | Exception]:
        self.entered.set()
        self.hold.wait(10)
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(items))
        if self.fail_on in items:
            raise OSError("disk full")
        return [ValueError(f"odd {i}") if i % 2 else f"ok {i}" for i in items]


async def test_items_submitted_together_share_one_batch() -> None:
    rec = Recorder()
    gc: GroupCommit[int, str] = GroupCommit(rec, max_batch=100, name="t-commit")
    results = await asyncio.gather(*(gc.submit(i) for i in (0, 2, 4)))
    assert results == ["ok 0", "ok 2", "ok 4"]
    assert rec.batches == [[0, 2, 4]] and rec.threads == {"t-commit"}
    gc.close()


async def test_an_exception_result_fails_only_its_item() -> None:
    gc: GroupCommit[int, str] = GroupCommit(Recorder(), max_batch=100, name="t")
    ok, odd = await asyncio.gather(gc.submit(2), gc.submit(3), return_exceptions=True)
    assert ok == "ok 2" and isinstance(odd, ValueError)
    gc.close()


async def test_items_arriving_during_a_commit_form_the_next_batch() -> None:
    rec = Recorder()
    rec.hold.clear()
    gc: GroupCommit[int, str] = GroupCommit(rec, max_batch=100, name="t")
    first = gc.submit(0)
    await asyncio.to_thread(rec.entered.wait, 10)  # the thread is inside commit([0])
    later = [gc.submit(i) for i in (2, 4, 6)]
    assert not gc.idle
    rec.hold.set()
    assert await first == "ok 0"
    assert await asyncio.gather(*later) == ["ok 2", "ok 4", "ok 6"]
    assert rec.batches == [[0], [2, 4, 6]]
    await gc.drain(5)
    assert gc.idle
    gc.close()


async def test_max_batch_splits_in_order() -> None:
    rec = Recorder()
    gc: GroupCommit[int, str] = GroupCommit(rec, max_batch=2, name="t")
    assert await asyncio.gather(*(gc.submit(i) for i in (0, 2, 4, 6, 8))) == [
        "ok 0", "ok 2", "ok 4", "ok 6", "ok 8"]
    assert rec.batches == [[0, 2], [4, 6], [8]]
    gc.close()


async def test_a_failed_commit_fails_its_whole_batch_and_not_the_next() -> None:
    rec = Recorder()
    rec.fail_on = 4
    committed: list[int] = []
    gc: GroupCommit[int, str] = GroupCommit(rec, max_batch=100, name="t",
                                           on_committed=lambda: committed.append(1))
    outcome = await asyncio.gather(gc.submit(2), gc.submit(4), return_exceptions=True)
    assert all(isinstance(o, OSError) for o in outcome)
    assert committed == []  # nothing committed: nobody is told
    assert await gc.submit(6) == "ok 6"
    assert committed == [1]
    gc.close()


async def test_a_cancelled_waiter_is_skipped() -> None:
    rec = Recorder()
    rec.hold.clear()
    gc: GroupCommit[int, str] = GroupCommit(rec, max_batch=100, name="t")
    gone = gc.submit(0)
    kept = gc.submit(2)
    gone.cancel()  # its connection went away
    rec.hold.set()
    assert await kept == "ok 2"
    assert rec.batches == [[0, 2]]  # still committed: it was received
    gc.close()


async def test_close_commits_what_is_queued_then_restarts_on_submit() -> None:
    rec = Recorder()
    gc: GroupCommit[int, str] = GroupCommit(rec, max_batch=100, name="t")
    assert await gc.submit(0) == "ok 0"
    await asyncio.to_thread(gc.close)
    assert await gc.submit(2) == "ok 2"  # a new thread
    gc.close()


def test_submit_needs_a_running_loop() -> None:
    gc: GroupCommit[int, str] = GroupCommit(Recorder(), max_batch=1, name="t")
    with pytest.raises(RuntimeError):
        gc.submit(0)


async def test_no_item_is_stranded_between_batches() -> None:
    """Items queued just after a commit, while the thread was not waiting, must still be
    committed (no wake-up is scheduled for them): senders one message at a time, many
    rounds, each answer awaited before the next send, with a deadline."""
    gc: GroupCommit[int, str] = GroupCommit(Recorder(), max_batch=100, name="t")

    async def sender(start: int) -> None:
        for i in range(start, start + 600, 2):
            assert await asyncio.wait_for(gc.submit(i), 5) == f"ok {i}"

    await asyncio.gather(sender(0), sender(10_000), sender(20_000))
    gc.close()


async def test_a_new_event_loop_gets_its_own_thread() -> None:
    gc: GroupCommit[int, str] = GroupCommit(Recorder(), max_batch=10, name="t")
    assert await gc.submit(0) == "ok 0"

    def other_loop() -> str:
        return asyncio.run(_submit_once(gc, 2))

    assert await asyncio.to_thread(other_loop) == "ok 2"
    gc.close()


async def _submit_once(gc: GroupCommit[int, str], item: int) -> str:
    return await gc.submit(item)


async def test_small_batches_commit_on_the_loop_when_the_thread_is_idle() -> None:
    rec = Recorder()
    gc: GroupCommit[int, str] = GroupCommit(rec, max_batch=100, name="t-commit",
                                           inline=rec, inline_max=3)
    here = threading.current_thread().name
    assert await asyncio.gather(*(gc.submit(i) for i in (0, 2, 4))) == [
        "ok 0", "ok 2", "ok 4"]
    assert rec.threads == {here}  # no hand-off
    assert await asyncio.gather(*(gc.submit(i) for i in (6, 8, 10, 12))) == [
        "ok 6", "ok 8", "ok 10", "ok 12"]
    assert rec.threads == {here, "t-commit"}  # over inline_max: the thread
    assert rec.batches == [[0, 2, 4], [6, 8, 10, 12]]
    assert gc.idle
    gc.close()


async def test_items_arriving_while_the_thread_commits_stay_with_the_thread() -> None:
    """Never two commits at once: what arrives while the thread is busy is its next
    batch, even when it is small enough to commit inline."""
    rec = Recorder()
    rec.hold.clear()
    gc: GroupCommit[int, str] = GroupCommit(rec, max_batch=100, name="t-commit",
                                           inline=rec, inline_max=2)
    big = [gc.submit(i) for i in (0, 2, 4)]
    await asyncio.to_thread(rec.entered.wait, 10)
    small = gc.submit(6)
    await asyncio.sleep(0.01)  # its wake-up ran: the thread is busy, so no inline commit
    assert rec.batches == []
    rec.hold.set()
    assert await asyncio.gather(*big, small) == ["ok 0", "ok 2", "ok 4", "ok 6"]
    assert rec.batches == [[0, 2, 4], [6]] and rec.threads == {"t-commit"}
    gc.close()


async def test_an_inline_commit_that_would_block_goes_to_the_thread() -> None:
    rec = Recorder()
    tried: list[list[int]] = []

    def busy(items: list[int]) -> list[str | Exception]:
        tried.append(list(items))
        raise WouldBlock  # another writer holds the lock: nothing done

    gc: GroupCommit[int, str] = GroupCommit(rec, max_batch=100, name="t-commit",
                                           inline=busy, inline_max=4)
    assert await gc.submit(2) == "ok 2"
    assert tried == [[2]] and rec.batches == [[2]] and rec.threads == {"t-commit"}
    assert gc.idle
    gc.close()
