"""The failed-record retry sensor (Requirement 7.4).

No `from __future__ import annotations` here: Dagster reads the context and resource annotations at definition time.
"""

import datetime as dt
import hashlib
from collections.abc import Sequence

import dagster as dg

from sync_pipeline.defs.recovery import seller_resync_job
from sync_pipeline.defs.resources import SyncDatabase
from sync_pipeline.services.database import Database
from sync_pipeline.services.retry_queue import QueuedRecord, due_retries, pending_retries

RETRY_SENSOR_INTERVAL_SECONDS = 60  # retry_delay_minutes is in minutes: a finer tick would only cost queries
TAG_SAMPLE = 20  # seller numbers written into a tag; the run config carries them all
RETRY_OF_TAG = "sync_pipeline/retry_of"  # the seller numbers this run retries
RETRY_COUNT_TAG = "sync_pipeline/retry_count"
RETRY_OF_SYNCS_TAG = "sync_pipeline/retry_of_syncs"  # the syncs whose writes failed
TRIGGER_TAG = "sync_pipeline/trigger"


def _sample(values: Sequence[str]) -> str:
    shown = ",".join(values[:TAG_SAMPLE])
    return shown + (f",+{len(values) - TAG_SAMPLE} more" if len(values) > TAG_SAMPLE else "")


def retry_run_request(db: Database, now: dt.datetime) -> dg.RunRequest | dg.SkipReason:
    """One seller_resync_job run for every queued seller whose retry is due at `now`, or why there is none.

    The run key names each seller with its count of failed writes: the same due records never launch twice, and a
    record that fails again (its count moves on) is launched again when it is next due.
    """
    due = due_retries(db, now)
    if not due:
        queued = pending_retries(db)
        if not queued:
            return dg.SkipReason("the retry queue is empty: no record failed to write")
        limit = db.settings().retry_max_attempts
        waiting = [r for r in queued if r.attempts <= limit]
        exhausted = len(queued) - len(waiting)
        nxt = f"; next due at {min(r.due_at for r in waiting):%Y-%m-%d %H:%M:%S} UTC" if waiting else ""
        return dg.SkipReason(
            f"no failed record is due for a retry at {now:%Y-%m-%d %H:%M:%S} UTC: {len(waiting)} waiting{nxt}, "
            f"{exhausted} out of retries (alerted; they wait for a fix and a manual seller_resync_job)"
        )
    keys = [r.seller_number for r in due]
    return dg.RunRequest(
        run_key=_run_key(due),
        run_config={"ops": {"resync_sellers": {"config": {"seller_numbers": keys}}}},
        tags={
            RETRY_OF_TAG: _sample(keys),
            RETRY_COUNT_TAG: str(len(keys)),
            RETRY_OF_SYNCS_TAG: _sample(sorted({r.sync_id for r in due if r.sync_id})),
            TRIGGER_TAG: "failed_record_retry_sensor",
        },
    )


def _run_key(due: Sequence[QueuedRecord]) -> str:
    text = ";".join(f"{r.seller_number}:{r.attempts}" for r in sorted(due, key=lambda r: r.seller_number))
    return "retry-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# job_name, not job=: Definitions rebuilds a sensor holding a job without its resources through
# SensorDefinition.with_attributes, which passes `owners` and prints a BetaWarning on every load.
@dg.sensor(
    job_name=seller_resync_job.name,
    minimum_interval_seconds=RETRY_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retries the sellers the database refused to write (a constraint, a trigger, a value): once their "
    "retry is due (retry_delay_minutes after the failure) it launches seller_resync_job for them, tagged "
    "sync_pipeline/retry_of. After retry_max_attempts failed retries a critical retry_exhausted alert names each "
    "seller and its last error.",
)
def failed_record_retry_sensor(context: dg.SensorEvaluationContext, database: SyncDatabase):  # type: ignore[no-untyped-def]
    db = database.open()
    result = retry_run_request(db, db.clock.now())
    if isinstance(result, dg.RunRequest):
        context.log.info(f"retrying {result.tags[RETRY_COUNT_TAG]} seller(s): {result.tags[RETRY_OF_TAG]}")
    return result


retry_sensors: list[dg.SensorDefinition] = [failed_record_retry_sensor]
