"""Adaptive batching: requests that arrive while a batch is being predicted are predicted
together in the next one. An idle replica adds no wait (unless LADLE_MAX_BATCH_WAIT_MS asks
for one), so latency at low load is unchanged and throughput grows with load.

Settings come from the replica's environment (a served entity's `environment_vars`):
LADLE_MAX_BATCH_SIZE (default 64; 1 disables batching) and LADLE_MAX_BATCH_WAIT_MS (0).
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Executor
from typing import Callable

Result = tuple[int, str, bytes]
Item = tuple[dict, bytes, asyncio.Future]


def batch_settings(env: dict[str, str] | None = None) -> tuple[int, float]:
    env = os.environ if env is None else env
    size = max(1, int(env.get("LADLE_MAX_BATCH_SIZE", "64")))
    wait_s = max(0.0, float(env.get("LADLE_MAX_BATCH_WAIT_MS", "0"))) / 1000.0
    return size, wait_s


class Batcher:
    def __init__(self, predict_batch: Callable[[list[tuple[dict, bytes]]], list[Result]],
                 executor: Executor, max_size: int, max_wait_s: float, lanes: int = 1) -> None:
        self.predict_batch = predict_batch
        self.executor = executor
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self.tasks = [asyncio.get_running_loop().create_task(self._lane()) for _ in range(max(1, lanes))]
        self.batches = 0
        self.items = 0

    async def submit(self, meta: dict, body: bytes) -> Result:
        fut = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((meta, body, fut))
        return await fut

    async def _lane(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            if self.max_wait_s and self.queue.qsize() < self.max_size - 1:
                await asyncio.sleep(self.max_wait_s)
            while len(batch) < self.max_size and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            live = [it for it in batch if not it[2].done()]  # cancelled requests are skipped
            if not live:
                continue
            try:
                results = await loop.run_in_executor(
                    self.executor, self.predict_batch, [(m, b) for m, b, _ in live])
            except Exception as e:  # a bug in the entity: every request of the batch learns it
                for _, _, fut in live:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            self.batches += 1
            self.items += len(live)
            for (_, _, fut), res in zip(live, results):
                if not fut.done():
                    fut.set_result(res)
