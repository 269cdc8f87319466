"""Concurrent requests written in one transaction: a group commit (issue 11: report ingest).

A request hands its item to `GroupCommit.submit` and waits. Items that arrive while a batch is
being written go into the next batch; a batch is one transaction in which `apply` handles every
item and returns, for each, its result or the protocol error that refused it (an item refused so
writes nothing; the others go on). A request is answered only after its batch committed. At low
load a batch is one item and costs what a transaction of its own did; under load BEGIN, COMMIT
and the statements `apply` shares are paid once per batch.

If the batch's transaction fails (a database error: one item may have broken it for all, or the
database is away), each of its items is written again in a transaction of its own, so one bad
item cannot fail the others, and an item that fails alone gets that error. Nothing is answered
as stored unless it was committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from vtn.store.db import Tx

T = TypeVar("T")
R = TypeVar("R")

# (tx, items) -> one outcome per item, in order: a result, or the exception that refused it.
Apply = Callable[[Tx, Sequence[T]], Awaitable[list[R | Exception]]]


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        transaction: Callable[[], AbstractAsyncContextManager[Tx]],
        apply: Apply[T, R],
        *,
        max_batch: int = 64,
        name: str = "group-commit",
    ) -> None:
        self._transaction = transaction
        self._apply = apply
        self._max_batch = max_batch
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed, for tests and benchmarks

    async def submit(self, item: T) -> R:
        """The item's result once its batch committed; raises what refused it."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name=self._name)
        return await future

    async def _write(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                outcomes = await self._commit([item for item, _ in batch])
            except Exception as err:  # settled per item below
                if len(batch) == 1:
                    _settle(batch[0][1], err)
                    continue
                for item, future in batch:  # each alone: one item may have failed them all
                    try:
                        (outcome,) = await self._commit([item])
                    except Exception as alone:  # this item's own error
                        outcome = alone
                    _settle(future, outcome)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                _settle(future, outcome)

    async def _commit(self, items: list[T]) -> list[R | Exception]:
        async with self._transaction() as tx:
            outcomes = await self._apply(tx, items)
        self.batches += 1
        return outcomes


def _settle(future: asyncio.Future[R], outcome: R | Exception) -> None:
    if future.done():  # the request was cancelled (client gone); its item was still written
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
