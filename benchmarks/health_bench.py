"""Benchmark: the health figures and an audit query by seller number with 10,000 syncs and 1,000,000 record logs.

Creates a fresh Postgres database (migrated to head), fills it with set-based INSERT … SELECT over generate_series
(10,000 syncs, one every 5 minutes over ~35 days, each with its metrics row; 1,000,000 record-level audit rows over
49,999 seller numbers; 50,000 error rows; 2,000 alerts), ANALYZEs it, then times `services.health.health` (goal
200 ms) and `AuditStore.query` by seller number (goal 50 ms), with and without the archive, as medians of several
runs after one warm-up. Prints the figures and their ratios to the goals; drops the database at the end.

    uv run python benchmarks/health_bench.py [--syncs 10000] [--records 1000000] [--runs 7] [--server POSTGRES_URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sync_pipeline.adapters.store.engine import make_engine  # noqa: E402
from sync_pipeline.domain.audit import AuditQuery  # noqa: E402
from sync_pipeline.services.database import open_database  # noqa: E402
from sync_pipeline.services.health import health  # noqa: E402

HEALTH_GOAL_S = 0.200  # issue 12
AUDIT_GOAL_S = 0.050
SELLERS = 49_999  # distinct seller numbers (~20 records each); prime to the sync count, so each spans many syncs
DEFAULT_SERVER = os.environ.get("SYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

# Constants only (sizes arrive as bound parameters). Sync n started (:syncs - n) x 5 minutes before now.
FILL = [
    """
    INSERT INTO sync_audit_logs (sync_id, run_id, kind, trigger, source, status, started_at, finished_at, heartbeat_at,
        duration_s, rows_read, valid_count, rejected_count, inserted_count, updated_count, unchanged_count,
        conflict_count, failed_count, error_count, phases, verified_at, verification_status, gaps_found)
    SELECT 'sync-' || lpad(g::text, 8, '0'), 'run-' || g, CASE WHEN g % 50 = 0 THEN 'resync' ELSE 'scheduled' END,
        'schedule:seller_sync_schedule', 'bench.csv',
        CASE WHEN g % 97 = 0 THEN 'failed' WHEN g % 31 = 0 THEN 'partial' WHEN g % 53 = 0 THEN 'skipped'
             ELSE 'succeeded' END,
        now() - (:syncs - g) * interval '5 minutes',
        now() - (:syncs - g) * interval '5 minutes' + interval '20 seconds',
        now() - (:syncs - g) * interval '5 minutes' + interval '20 seconds',
        20 + (g % 7), 5000, 4990, 10, g % 20, g % 40, 4900, 0, 0, 10,
        '{"fetch": 1.5, "validate": 4.0, "compare": 1.0, "update": 8.0, "verify": 3.0}'::json,
        now() - (:syncs - g) * interval '5 minutes' + interval '19 seconds', 'clean', g % 3
    FROM generate_series(1, :syncs) AS g
    """,
    """
    INSERT INTO sync_metrics (sync_id, kind, status, started_at, recorded_at, duration_s, fetch_s, validate_s,
        compare_s, update_s, verify_s, resync_s, rows_read, rows_written, rows_per_s, error_count, errors_by_category)
    SELECT sync_id, kind, status, started_at, finished_at, duration_s, 1.5, 4.0, 1.0, 8.0, 3.0, 0.0, rows_read,
        inserted_count + updated_count, rows_read / duration_s, 10, '{"validation": 10}'::json
    FROM sync_audit_logs WHERE status <> 'skipped'
    """,
    """
    INSERT INTO sync_record_logs (sync_id, seller_number, action, sheet_row, created_at)
    SELECT 'sync-' || lpad((1 + g % :syncs)::text, 8, '0'), 'AA' || lpad((g % :sellers)::text, 5, '0'),
        (ARRAY['inserted', 'updated', 'rejected', 'conflict', 'failed'])[1 + g % 5], 2 + g % 5000,
        now() - (:syncs - 1 - g % :syncs) * interval '5 minutes'
    FROM generate_series(1, :records) AS g
    """,
    """
    INSERT INTO sync_error_logs (sync_id, category, rule, message, seller_number, sheet_row, cell, created_at)
    SELECT 'sync-' || lpad((1 + g % :syncs)::text, 8, '0'), 'validation', 'required', 'name is required',
        'AA' || lpad((g % :sellers)::text, 5, '0'), 2 + g % 5000, 'B' || (2 + g % 5000),
        now() - (:syncs - 1 - g % :syncs) * interval '5 minutes'
    FROM generate_series(1, :records / 20) AS g
    """,
    """
    INSERT INTO sync_alerts (alert_type, severity, message, sync_id, created_at, acknowledged_at)
    SELECT 'gaps_found', 'warning', 'gaps found', 'sync-' || lpad((g * 5)::text, 8, '0'),
        now() - (2000 - g) * interval '25 minutes',
        CASE WHEN g % 2 = 0 THEN now() - (2000 - g) * interval '25 minutes' + interval '1 hour' END
    FROM generate_series(1, 2000) AS g
    """,
]


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm-up: connection, statement caches, settings defaults
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syncs", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="a Postgres URL whose server may create databases")
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed) to explain queries")
    args = parser.parse_args()

    name = f"health_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # a generated name, never data
    url = sa.make_url(args.server).set(database=name).render_as_string(hide_password=False)
    try:
        db = open_database(url)
        t0 = time.perf_counter()
        sizes = {"syncs": args.syncs, "records": args.records, "sellers": SELLERS}
        with db.engine.begin() as conn:
            for statement in FILL:
                conn.execute(sa.text(statement), sizes)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
            counts = {
                t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()  # constant table names
                for t in ("sync_audit_logs", "sync_metrics", "sync_record_logs", "sync_error_logs", "sync_alerts")
            }
        print(f"filled in {time.perf_counter() - t0:.1f} s: {counts}")

        figures = health(db)
        print(
            f"health: 24 h {figures.success_rate_24h:.3f} ({figures.rate_24h.attempts} attempts), 7 d "
            f"{figures.success_rate_7d:.3f} ({figures.rate_7d.attempts}), gaps {figures.gap_count}, open alerts "
            f"{figures.open_alerts}, trend {len(figures.trend)} points, 7-day p95 {figures.week.duration_s.p95} s"
        )
        health_median, health_max = timed(lambda: health(db), args.runs)

        seller = "AA01234"

        def by_seller(include_archive: bool) -> int:
            with db.engine.connect() as conn:
                query = AuditQuery(seller_number=seller, include_archive=include_archive)
                return len(db.audit.query(conn, query))

        found = by_seller(False)
        audit_median, audit_max = timed(lambda: by_seller(False), args.runs)
        archive_median, archive_max = timed(lambda: by_seller(True), args.runs)

        print(f"\n{'measure':<44} {'median':>9} {'max':>9} {'goal':>7} {'ratio':>6}")
        rows = [
            ("health figures", health_median, health_max, HEALTH_GOAL_S),
            (f"audit query by seller ({found} syncs)", audit_median, audit_max, AUDIT_GOAL_S),
            ("audit query by seller, --include-archive", archive_median, archive_max, AUDIT_GOAL_S),
        ]
        for label, median, worst, goal in rows:
            times = f"{median * 1000:>7.1f}ms {worst * 1000:>7.1f}ms {goal * 1000:>5.0f}ms"
            print(f"{label:<44} {times} {median / goal:>6.2f}")
    finally:
        db.engine.dispose()
        if args.keep:
            print(f"kept: {url}")
        else:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
