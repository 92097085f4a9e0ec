"""Tables the server writes rows to, and the seams it writes them through.

- `RowWriter`: what a recorder offers rows to. The server's is `SpooledWriter`
  (telemetry/spooled.py: rows journaled on disk, drained into the tables in batches); a
  gateway worker's is `RelayWriter` (gateway/follower.py: rows sent to the server).
- `TableSink`: where batches of rows are appended. `DeltaSink` appends to Delta tables under
  a root directory with the `deltalake` package; `MemorySink` keeps rows in memory for tests.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ladle.support.retry import retrying_blocking

log = logging.getLogger("ladle.telemetry")


@dataclass(frozen=True)
class TableRef:
    name: str                       # catalog.schema.table
    columns: tuple[tuple[str, str], ...]   # (column, type): string|int|long|double|bool|date|timestamp|list<string>|map<string,string>

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))


Txn = tuple[str, int]   # (application id, version): a Delta transaction, for idempotent appends


class RowWriter(Protocol):
    dropped: dict[str, int]         # table -> rows refused so far (reported in later rows)

    def offer(self, table: TableRef, row: dict[str, Any], size: int = 256) -> bool:
        """Take one row for `table` without blocking; False (and counted in `dropped`) when
        it was refused."""
        ...


class TableSink(Protocol):
    def append(self, table: TableRef, rows: list[dict[str, Any]], txn: Txn | None = None) -> None:
        """Append rows (blocking; called from a worker thread, one call at a time); with `txn`,
        record that application's version in the same commit."""
        ...

    def committed(self, table: TableRef, app_id: str) -> int:
        """The last version `app_id` committed to `table` (0: none)."""
        ...


class MemorySink:
    def __init__(self, fail: bool = False) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.batches = 0
        self.fail = fail
        self.lock = threading.Lock()
        self.txns: dict[tuple[str, str], int] = {}

    def append(self, table: TableRef, rows: list[dict[str, Any]], txn: Txn | None = None) -> None:
        if self.fail:
            raise OSError("sink failure (test)")
        with self.lock:
            self.tables.setdefault(table.name, []).extend(rows)
            self.batches += 1
            if txn is not None:
                self.txns[(table.name, txn[0])] = txn[1]

    def committed(self, table: TableRef, app_id: str) -> int:
        return self.txns.get((table.name, app_id), 0)


def _arrow_type(t: str) -> Any:
    import pyarrow as pa

    return {
        "string": pa.string(), "int": pa.int32(), "long": pa.int64(), "double": pa.float64(),
        "bool": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"),
        "list<string>": pa.list_(pa.string()), "map<string,string>": pa.map_(pa.string(), pa.string()),
    }[t]


def arrow_schema(table: TableRef) -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(c, _arrow_type(t)) for c, t in table.columns])


class DeltaSink:
    """Delta tables at `root/<catalog>/<schema>/<table>` (readable by Spark, DuckDB, Polars)."""

    def __init__(self, root: Path, compact_every: int = 200) -> None:
        self.root = Path(root)
        self.compact_every = compact_every
        self._writes: dict[str, int] = {}
        self._created: set[str] = set()

    def path(self, table: TableRef) -> Path:
        return self.root.joinpath(*table.parts)

    def append(self, table: TableRef, rows: list[dict[str, Any]], txn: Txn | None = None) -> None:
        import pyarrow as pa
        from deltalake import CommitProperties, Transaction, write_deltalake
        from deltalake.exceptions import CommitFailedError

        schema = arrow_schema(table)
        data = pa.Table.from_pylist(rows, schema=schema)
        path = self.path(table)
        self._ensure(table, path)
        props = CommitProperties(app_transactions=[Transaction(*txn)]) if txn is not None else None
        def write() -> None:
            try:
                write_deltalake(str(path), data, mode="append", commit_properties=props)
            except CommitFailedError:
                # deltalake can report a conflict for a commit that landed (seen when servers
                # create the table at once): the transaction version says which it was
                if txn is not None and self.committed(table, txn[0]) >= txn[1]:
                    return
                raise

        # Several servers append to one table: a commit that lost the race for the next log
        # version (or for the table's creation) is made again, at once.
        retrying_blocking(CommitFailedError, attempts=6, delay=0.05, max_delay=1.0)(write)
        n = self._writes[table.name] = self._writes.get(table.name, 0) + 1
        if self.compact_every and n % self.compact_every == 0:
            self._compact(path)

    def _ensure(self, table: TableRef, path: Path) -> None:
        """Create the table once, under a lock file, before any append: delta-rs appending to
        a table that does not exist yet, from several processes at once, committed a second
        table creation over the first (two protocol/metadata commits, and the transaction
        versions of the first lost: rows written twice)."""
        if table.name in self._created:
            return
        import fcntl

        from deltalake import DeltaTable

        path.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.name}.create-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (path / "_delta_log").is_dir() or not any((path / "_delta_log").glob("*.json")):
                DeltaTable.create(str(path), schema=arrow_schema(table), mode="ignore")
        self._created.add(table.name)

    def committed(self, table: TableRef, app_id: str) -> int:
        from deltalake import DeltaTable

        path = self.path(table)
        if not (path / "_delta_log").is_dir():
            return 0
        return DeltaTable(str(path)).transaction_version(app_id) or 0

    @staticmethod
    def _compact(path: Path) -> None:
        from deltalake import DeltaTable

        try:
            DeltaTable(str(path)).optimize.compact()
        except Exception:  # compaction is an optimisation; never lose the writer over it
            log.exception("compacting %s failed", path)
