"""Benchmark: a whole seller sync against Postgres `COPY` of the same CSV, at 100,000 or 1,000,000 rows (issue 13).

One run, one generated sheet (deterministic seed, realistic Japanese values written the messy ways offices write
them), six stages, each in its own child process so that one stage's memory never counts against the next:

    a  COPY of the CSV into a bare table with the same columns (Postgres; the reference)
    b  a full sync into an empty Postgres database, through the code path the job uses
    c  the same sync again with nothing changed (must write 0 rows)
    d  a sync after 1 % of the rows changed in the sheet (must write exactly those)
    e  a full sync into an empty SQLite database
    f  a whole `sync-pipeline sync` process (Dagster in-process, SQLite) on 1,000 rows
    g  a full sync into an empty Postgres database of the same sheet with ten extra columns, under a contract that
       names them (benchmarks/ten_extra_fields.yaml: every contract kind, stored in sellers.attributes)
    h  that sync again with nothing changed (must write 0 rows)

`--contract PATH` runs stages b–e under that sheet contract (default: none, the built-in fields).
It prints seconds, rows/s, rows written, peak resident memory of the stage's process, the sync's own phases and the
ratio of b, c, d to a. The generated CSVs are kept under benchmarks/.data/ (git-ignored) for the next run.

    uv run python benchmarks/sync_bench.py [--rows 100000] [--only a,b,c,d,e,f,g,h] [--server POSTGRES_URL]
                                           [--contract PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the seller generator lives with the tests

DATA_DIR = ROOT / "benchmarks" / ".data"
DEFAULT_SERVER = os.environ.get("SYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
STAGES = ("a", "b", "c", "d", "e", "f", "g", "h")
EXTRA_CONTRACT = ROOT / "benchmarks" / "ten_extra_fields.yaml"
EXTRA_HEADERS = (
    "担当者",
    "次回連絡日",
    "土地面積",
    "建物面積",
    "階数",
    "専任",
    "ローン残債",
    "ランク",
    "反響経路",
    "訪問日",
)
STAGE_TITLES = {
    "a": "COPY into a bare table (reference)",
    "b": "full sync, empty Postgres",
    "c": "same sync again, nothing changed",
    "d": "sync after 1% of rows changed",
    "e": "full sync, empty SQLite",
    "f": "`sync-pipeline sync` process, 1,000 rows",
    "g": "full sync, 10 extra fields, empty Postgres",
    "h": "same sync again (10 extra fields)",
}
PROCESS_ROWS = 1_000  # stage f: start-up cost dominates; the target is under 5 s for the whole process
CHANGED_EVERY = 100  # stage d: every 100th seller changes (1 %)
BLOCK = 100_000  # sellers are generated per block; each block has its own seller-number prefixes
# Second letters of the seller-number prefixes of blocks 1, 2, …: block 0 keeps the sample's TK/OS/NG/FK; later
# blocks become TA/OA/NA/FA, TB/…, never colliding with block 0 (no K, S or G here).
BLOCK_LETTERS = "ABCDEFHJLMNPQRUVWXYZ"
STATUS_COLUMN = 7  # ステータス in the canonical header order
UPDATED_COLUMN = 10  # 更新日時
TEXT_COLUMNS = ("seller_number", "name", "phone", "email", "address", "property_address", "property_type", "status",
                "inquiry_date", "assessed_amount", "sheet_updated_at")  # fmt: skip


# --- the sheet ----------------------------------------------------------------------------------------------------


def generate_rows(n: int, seed: int) -> list[list[str]]:
    """Header plus `n` messy-but-valid seller rows (and the odd blank row), deterministic for `seed`."""
    from sync_pipeline_tests.support import sample_sheet as s

    rows: list[list[str]] = [list(s.HEADER)]
    for block, start in enumerate(range(0, n, BLOCK)):
        sellers = s.generate_sellers(min(BLOCK, n - start), seed + block)
        mess = random.Random(f"messy-{seed}-{block}")
        for seller in sellers:
            if block:
                key = seller.seller_number
                seller = dataclasses.replace(seller, seller_number=key[0] + BLOCK_LETTERS[block - 1] + key[2:])
            if mess.random() < s.BLANK_ROW_SHARE:
                rows.append([""] * len(s.HEADER))
            rows.append(s.render_row(seller, mess))
    return rows


def change_rows(rows: list[list[str]]) -> tuple[list[list[str]], int]:
    """A copy of `rows` with every CHANGED_EVERY-th seller's status changed and its 更新日時 moved a day on."""
    from sync_pipeline_tests.support import sample_sheet as s

    changed = [list(r) for r in rows]
    count = 0
    sellers = [r for r in changed[1:] if any(c.strip() for c in r)]
    for seller in sellers[::CHANGED_EVERY]:
        status = seller[STATUS_COLUMN]
        seller[STATUS_COLUMN] = s.STATUSES[(s.STATUSES.index(status) + 1) % len(s.STATUSES)]
        seller[UPDATED_COLUMN] = (dt.datetime(2026, 1, 1, 9, 0) + dt.timedelta(minutes=count)).strftime(
            "%Y/%m/%d %H:%M"
        )
        count += 1
    return changed, count


def extra_cells(rng: random.Random) -> list[str]:
    """The ten extra columns of one seller, written as offices write them (full-width digits, eras, ○/×)."""
    day = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(365))
    return [
        rng.choice(["佐藤", "鈴木", "高橋", "田中", ""]),
        rng.choice([f"{day:%Y/%m/%d}", f"令和7年{day.month}月{day.day}日", ""]),
        rng.choice([f"{rng.uniform(50, 400):.1f}", "８５．５", f"{rng.randrange(1000, 9999):,}.25"]),
        f"{rng.uniform(40, 250):.2f}",
        str(rng.randrange(1, 5)),
        rng.choice(["○", "×", "はい", "いいえ", ""]),
        rng.choice(["有", "無", "TRUE", "FALSE"]),
        rng.choice(["A", "B", "C", "Ａ", "b"]),
        rng.choice(["Web", "電話", "紹介", "チラシ"]),
        rng.choice([f"{day:%Y-%m-%d}", ""]),
    ]


def with_extra_columns(base: Path, seed: int) -> Path:
    """The base CSV with the ten extra columns appended (generated once, then reused)."""
    import csv

    from sync_pipeline_tests.support.sample_sheet import write_csv

    path = base.with_name(base.stem + "_extra.csv")
    if not path.exists():
        rng = random.Random(f"extra-{seed}")
        with base.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
        blank = [""] * len(EXTRA_HEADERS)
        out = [[*rows[0], *EXTRA_HEADERS]]
        out += [[*r, *(extra_cells(rng) if any(c.strip() for c in r) else blank)] for r in rows[1:]]
        write_csv(path, out)
    return path


def sheets(n: int, seed: int) -> tuple[Path, Path, int]:
    """The base CSV and the 1 %-changed CSV for `n` rows (generated once, then reused)."""
    from sync_pipeline_tests.support.sample_sheet import write_csv

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    base, changed = DATA_DIR / f"sellers_{n}_{seed}.csv", DATA_DIR / f"sellers_{n}_{seed}_changed.csv"
    count_file = DATA_DIR / f"sellers_{n}_{seed}_changed.count"
    if not (base.exists() and changed.exists() and count_file.exists()):
        t0 = time.perf_counter()
        rows = generate_rows(n, seed)
        write_csv(base, rows)
        edited, count = change_rows(rows)
        write_csv(changed, edited)
        count_file.write_text(str(count))
        print(f"generated {n:,} rows in {time.perf_counter() - t0:.1f} s: {base}", file=sys.stderr)
    return base, changed, int(count_file.read_text())


# --- the stages (each runs in a child process: `--stage X`) -------------------------------------------------------


def run_sync(db: Any, source: Any) -> Any:
    """THE sync under test: the lifecycle (`SyncRun`: read, apply, verify, complete, repair) as the job runs it,
    through its one non-Dagster entry point."""
    from sync_pipeline.services.resync import sync_verify_repair

    return sync_verify_repair(db, source).summary


def stage_copy(url: str, csv_path: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    from sync_pipeline.adapters.store.engine import make_engine

    engine = make_engine(url, poolclass=sa.pool.NullPool)
    columns = ", ".join(f"{c} text" for c in TEXT_COLUMNS)  # constants, never data
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_copy")
        conn.exec_driver_sql(f"CREATE TABLE bench_copy ({columns})")
    t0 = time.perf_counter()
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with (
            csv_path.open("rb") as handle,
            cursor.copy("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')") as copy,
        ):
            handle.read(3)  # the UTF-8 BOM Excel writes; COPY would take it as part of the first header
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        written = conn.exec_driver_sql("SELECT count(*) FROM bench_copy").scalar_one()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "written": int(written), "rows": int(written)}


def stage_sync(url: str, csv_path: Path, contract: str | None = None) -> dict[str, Any]:
    from sync_pipeline.adapters.sheets.file import FileSheetSource
    from sync_pipeline.services.database import open_database
    from sync_pipeline.services.sources import ContractedSource

    db = open_database(url)  # migrates an empty database first: not part of the measured sync
    db.settings()  # first-start defaults written, as on any database that has synced before
    source = FileSheetSource(csv_path)
    t0, cpu0 = time.perf_counter(), time.process_time()
    summary = run_sync(db, ContractedSource(source, contract) if contract else source)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    c = summary.counts
    return {
        "seconds": seconds,
        "cpu_s": cpu,  # this process only: the database server's work is not in it
        "rows": c.valid,
        "written": c.inserted + c.updated,
        "status": summary.status.value,
        "counts": dataclasses.asdict(c),
        "phases": {k: round(float(v), 3) for k, v in summary.phases.items()},
        "duration_s": summary.duration_s,
    }


def run_stage(stage: str, url: str, csv_path: Path, seed: int, contract: str | None) -> None:
    if stage == "a":
        result = stage_copy(url, csv_path)
    elif stage == "f":
        result = stage_process(seed)
    else:
        result = stage_sync(url, csv_path, contract)
    # Stage f's work happens in its own child (the command); the others' in this process.
    who = resource.RUSAGE_CHILDREN if stage == "f" else resource.RUSAGE_SELF
    result["peak_rss_mib"] = resource.getrusage(who).ru_maxrss / 1024
    print(json.dumps(result))


def stage_process(seed: int) -> dict[str, Any]:
    """Stage f: the installed command as an operator runs it, on a fresh SQLite database, timed from outside."""
    from sync_pipeline_tests.support.sample_sheet import write_csv

    with tempfile.TemporaryDirectory(prefix="sync_bench_") as tmp:
        csv_path = write_csv(Path(tmp) / "sellers.csv", generate_rows(PROCESS_ROWS, seed))
        script = Path(sys.executable).with_name("sync-pipeline")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "sync_pipeline.cli"]
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "DAGSTER_", "GOOGLE_"))}
        env = {**clean, "SYNC_DATABASE_URL": f"sqlite:///{tmp}/f.db"}
        t0 = time.perf_counter()
        done = subprocess.run(
            [*command, "sync", "--source", str(csv_path), "--json"], capture_output=True, text=True, env=env
        )
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"stage f failed:\n{done.stderr[-4000:]}")
        summary = json.loads(done.stdout)
    return {
        "seconds": seconds,
        "rows": summary["valid"],
        "written": summary["inserted"] + summary["updated"],
        "phases": summary["phases"],
        "duration_s": summary["duration_s"],
    }


# --- the parent: one child process per stage ----------------------------------------------------------------------


def stage_in_child(stage: str, url: str, csv_path: Path, seed: int, contract: str | None = None) -> dict[str, Any]:
    args = [sys.executable, __file__, "--stage", stage, "--url", url, "--csv", str(csv_path), "--seed", str(seed)]
    if contract:
        args += ["--contract", contract]
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t0
    return result


def create_database(server: str) -> tuple[str, str]:
    import sqlalchemy as sa

    from sync_pipeline.adapters.store.engine import make_engine

    name = f"sync_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')  # a generated name, never data
    admin.dispose()
    return name, sa.make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(server: str, name: str) -> None:
    import sqlalchemy as sa

    from sync_pipeline.adapters.store.engine import make_engine

    admin = make_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def report(rows: int, results: dict[str, dict[str, Any]], expected_changed: int) -> None:
    print(f"\nsync_bench: {rows:,} rows, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    header = (
        f"{'stage':<44} {'seconds':>8} {'client CPU':>10} {'rows/s':>10} {'written':>9} {'peak RSS':>10} {'× (a)':>7}"
    )
    print(header)
    print("-" * len(header))
    reference = results.get("a", {}).get("seconds")
    for stage in STAGES:
        if stage not in results:
            continue
        r = results[stage]
        ratio = f"{r['seconds'] / reference:.1f}" if reference and stage in "bcdgh" else ""
        rate = r["rows"] / r["seconds"] if r["seconds"] else 0.0
        cpu = f"{r['cpu_s']:.2f}" if "cpu_s" in r else ""
        print(
            f"{stage + ') ' + STAGE_TITLES[stage]:<44} {r['seconds']:>8.2f} {cpu:>10} {rate:>10,.0f} "
            f"{r['written']:>9,} {r['peak_rss_mib']:>7,.0f} MiB {ratio:>7}"
        )
    print()
    for stage in STAGES:
        phases = results.get(stage, {}).get("phases")
        if phases:
            text = ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
            print(f"{stage}) phases (s): {text}; duration_s {results[stage].get('duration_s')}")
    checks = []
    if "c" in results:
        checks.append(f"c wrote {results['c']['written']} rows (expected 0)")
    if "d" in results:
        checks.append(f"d wrote {results['d']['written']} rows (expected {expected_changed})")
    if "h" in results:
        checks.append(f"h wrote {results['h']['written']} rows (expected 0)")
    if "b" in results and "g" in results:
        checks.append(f"g/b (ten extra fields against none) {results['g']['seconds'] / results['b']['seconds']:.2f}")
    if checks:
        print("; ".join(checks))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--only", default=",".join(STAGES), help="stages to run, e.g. a,b,c (default: all)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="a Postgres URL whose server may create databases")
    parser.add_argument("--json", action="store_true", help="also print the raw figures as one JSON object")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage in this (child) process
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--contract", help="sheet contract file for stages b-e (default: the built-in fields)")
    args = parser.parse_args()
    if args.stage:
        run_stage(args.stage, args.url, Path(args.csv), args.seed, args.contract)
        return

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; choose from {','.join(STAGES)}")
    base, changed, expected_changed = sheets(args.rows, args.seed)
    results: dict[str, dict[str, Any]] = {}
    name, url = create_database(args.server)
    extra_name, extra_url = create_database(args.server)  # stages g and h: a database of their own
    try:
        for stage in STAGES:
            if stage not in only:
                continue
            if stage == "e":
                with tempfile.TemporaryDirectory(prefix="sync_bench_") as tmp:
                    results[stage] = stage_in_child(stage, f"sqlite:///{tmp}/e.db", base, args.seed, args.contract)
            elif stage in "gh":
                extra = with_extra_columns(base, args.seed)
                results[stage] = stage_in_child(stage, extra_url, extra, args.seed, str(EXTRA_CONTRACT))
            else:
                csv_path = changed if stage == "d" else base
                results[stage] = stage_in_child(stage, url, csv_path, args.seed, args.contract)
            print(f"{stage}: {results[stage]['seconds']:.2f} s", file=sys.stderr)
    finally:
        drop_database(args.server, name)
        drop_database(args.server, extra_name)
    report(args.rows, results, expected_changed)
    if args.json:
        print(json.dumps({"rows": args.rows, "results": results}))


if __name__ == "__main__":
    main()
