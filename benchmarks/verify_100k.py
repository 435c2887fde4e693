"""Benchmark: verification of 100,000 sellers on Postgres, against the 1 second goal of issue #4.

Creates a fresh Postgres database, loads 100,000 sellers through the sync itself (so that stored rows and hashes are
exactly what a real sync leaves), then times `services.verify.verify` — the two set-based queries and the pandas
maths — a few times and prints the median and its ratio to the goal. The database is dropped at the end.

    uv run python benchmarks/verify_100k.py [--sellers 100000] [--runs 5] [--server POSTGRES_URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the sample-sheet generator lives with the tests

from sync_pipeline.adapters.store.engine import make_engine  # noqa: E402
from sync_pipeline.domain.audit import SyncKind  # noqa: E402
from sync_pipeline.services.database import open_database  # noqa: E402
from sync_pipeline.services.lifecycle import SyncRun  # noqa: E402
from sync_pipeline.services.verify import verify_snapshot  # noqa: E402
from sync_pipeline_tests.support.sample_sheet import generate_rows  # noqa: E402
from sync_pipeline_tests.support.sheets import MemorySheetSource  # noqa: E402

GOAL_SECONDS = 1.0  # issue #4: cheap enough to run after every sync
DEFAULT_SERVER = os.environ.get("SYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sellers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="a Postgres URL whose server may create databases")
    args = parser.parse_args()

    name = f"verify_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # a generated name, never data
    url = sa.make_url(args.server).set(database=name).render_as_string(hide_password=False)
    try:
        db = open_database(url)
        rows = generate_rows(args.sellers, seed=4, messy=False)
        t0 = time.perf_counter()
        with SyncRun(db, MemorySheetSource(rows, description="benchmark"), kind=SyncKind.MANUAL) as run:
            read = run.read()
            run.apply()
        snapshot, settings = read.snapshot, read.settings
        load_s = time.perf_counter() - t0
        with db.engine.connect() as conn:
            held = conn.execute(sa.text("SELECT count(*) FROM sellers")).scalar_one()
        with db.engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))

        verify_snapshot(db, snapshot, settings)  # warm-up: connection, plan cache, imports
        timings = []
        for _ in range(args.runs):
            result = verify_snapshot(db, snapshot, settings)
            timings.append(result.seconds)
        median = statistics.median(timings)

        # The same again with 1% of the sellers deleted and 1% edited behind the sync's back (the repair path's input).
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM sellers WHERE id % 100 = 1"))
            conn.execute(sa.text("UPDATE sellers SET name = name || '!' WHERE id % 100 = 2"))
        dirty = [verify_snapshot(db, snapshot, settings) for _ in range(args.runs)]
        dirty_median = statistics.median(d.seconds for d in dirty)
        print(f"sellers in the sheet (valid):  {len(snapshot.valid):,}")
        print(f"sellers in the database:       {held:,}  (loaded by the sync in {load_s:.1f}s)")
        print(
            f"verification status:           {result.status.value} ({len(result.gaps)} gaps, {len(result.stale)} stale)"
        )
        print(f"verification, {args.runs} runs (s):     " + ", ".join(f"{t:.3f}" for t in timings))
        print(f"median verification time:      {median:.3f} s")
        print(f"ratio to the {GOAL_SECONDS:g} s goal:        {median / GOAL_SECONDS:.2f}")
        found = f"{len(dirty[0].gaps):,} gaps, {len(dirty[0].stale):,} stale found"
        ratio = dirty_median / GOAL_SECONDS
        print(f"with 1% deleted and 1% edited: {dirty_median:.3f} s median ({found}; ratio {ratio:.2f})")
        db.engine.dispose()
        if result.status.value != "clean":
            raise SystemExit("verification of a freshly synced database should be clean")
        if len(dirty[0].gaps) != args.sellers // 100 or len(dirty[0].stale) != args.sellers // 100:
            raise SystemExit("verification missed some of the deleted or edited sellers")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
