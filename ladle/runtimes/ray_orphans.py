"""Orphaned Serve applications: ladle's applications that no stored endpoint uses (their
endpoints were deleted while no reconciler ran) are deleted by the reconciler owner's backend."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ladle.runtimes import ray_serve as rs
from ladle.runtimes.ray_serve import app_name

if TYPE_CHECKING:
    from ladle.runtimes.ray import RayBackend

log = logging.getLogger("ladle.runtimes.ray")


class OrphanCollector:
    def __init__(self, backend: "RayBackend", grace_s: float) -> None:
        self.backend = backend
        self.grace_s = grace_s
        self.seen: dict[str, float] = {}       # app -> when first seen with no endpoint
        self.collecting: set[str] = set()

    def collect(self, keep: set[str]) -> None:
        """Delete ladle's Serve applications that no endpoint serves: those of endpoints
        deleted while no reconciler ran. `keep` is every group key the stored endpoints use;
        the reconciler owner calls this each pass. An application is deleted once it has been
        seen unwanted for `orphan_grace_s` (a poll or a record read a moment ago is not
        enough to destroy replicas). One Ray cluster serves one ladle deployment: another's
        applications would look orphaned here."""
        b = self.backend
        if not b._connect.done() or b._apps_at == float("-inf"):
            return
        wanted = {app_name(k) for k in keep} | {g.app for g in b._groups.values()}
        now = time.monotonic()
        for app in [a for a in self.seen if a not in b._apps or a in wanted]:
            del self.seen[app]
        for app, view in b._apps.items():
            if app in wanted or view.status == "DELETING" or app in self.collecting:
                continue
            first = self.seen.setdefault(app, now)
            if now - first >= self.grace_s:
                self.collecting.add(app)
                asyncio.get_running_loop().create_task(self._collect(app))

    async def _collect(self, app: str) -> None:
        b = self.backend
        try:
            log.info("deleting Ray Serve application %s: no endpoint serves it any more", app)
            await b.run_blocking(rs.delete, app)
            self.seen.pop(app, None)
            b.kick_poll()
        except Exception as e:
            log.warning("deleting orphaned Ray Serve application %s failed: %s", app, e)
        finally:
            self.collecting.discard(app)
