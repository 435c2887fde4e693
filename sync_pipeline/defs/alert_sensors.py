"""Sensors that raise alerts (Requirement 3) and e-mail them (3.5): thin faces over the same services as
`sync-pipeline alerts check`, running by default whenever dagster-daemon runs.

- `consecutive_failures_sensor` reacts to a failed `seller_sync_job` run at once.
- `missed_sync_sensor` evaluates every rule on a timer: it is the only way to notice that nothing ran at all
  (no_recent_success), and it also counts failures of syncs that never reached this instance's run history (the CLI
  with an ephemeral instance, `sync_verify_repair`), since the rules read the audit log, not Dagster's runs.
- `alert_delivery_sensor` sends the e-mail the outbox owes. It is its own sensor rather than part of the rule
  sensors so that a slow or unreachable mail server (up to the SMTP timeout per try) never delays raising an alert,
  and the UI's tick history shows delivery problems apart from rule decisions.

A run tagged `dagster/will_retry=true` failed but Dagster will run it again: the failure sensor leaves it to its
retry, and the rules are told to skip its sync, so one logical sync that fails and is retried counts once.
"""

import logging
from collections.abc import Callable

import dagster as dg

from sync_pipeline.defs.jobs import seller_sync_job
from sync_pipeline.defs.resources import AlertWebhooks, SyncDatabase
from sync_pipeline.domain.alert_rules import CONSECUTIVE_FAILURES_RULE
from sync_pipeline.domain.alerts import Alert, Severity
from sync_pipeline.services.alert_delivery import deliver_due
from sync_pipeline.services.alert_rules import ALL_RULES, evaluate_rules

WILL_RETRY_TAG = "dagster/will_retry"
RETRIED_RUNS_LOOKBACK = 200  # failed runs searched for the will_retry tag; older ones are long superseded
MISSED_SYNC_INTERVAL_SECONDS = 120  # no_success_alert_hours is at least 0.1 h (6 min): two minutes is precise enough
DELIVERY_INTERVAL_SECONDS = 60  # an alert reaches a person within about a minute of being raised


def alert_logger(log: logging.Logger | dg.DagsterLogManager) -> Callable[[Alert], None]:
    """Write each new alert to the sensor's (or run's) log at its severity (Property 11)."""
    levels = {Severity.CRITICAL: log.critical, Severity.WARNING: log.warning, Severity.INFO: log.info}

    def emit(alert: Alert) -> None:
        levels[alert.severity](f"ALERT {alert.severity.value.upper()} [{alert.alert_type}] #{alert.id} {alert.message}")

    return emit


def runs_to_be_retried(instance: dg.DagsterInstance) -> frozenset[str]:
    """Failed seller_sync_job runs that Dagster will retry: their retry's outcome counts instead of theirs."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=seller_sync_job.name, statuses=[dg.DagsterRunStatus.FAILURE], tags={WILL_RETRY_TAG: "true"}
        ),
        limit=RETRIED_RUNS_LOOKBACK,
    )
    return frozenset(run.run_id for run in runs)


@dg.run_failure_sensor(
    name="consecutive_failures_sensor",
    monitored_jobs=[seller_sync_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a seller_sync_job run fails, raises a critical consecutive_failures alert if the latest "
    "consecutive_failure_threshold syncs all failed (one alert per failure streak; e-mailed by alert_delivery_sensor).",
)
def consecutive_failures_sensor(context: dg.RunFailureSensorContext, database: SyncDatabase):
    run = context.dagster_run
    if run.tags.get(WILL_RETRY_TAG) == "true":
        return dg.SkipReason(
            f"run {run.run_id} failed, but Dagster will retry it ({WILL_RETRY_TAG}=true): its retry is counted instead"
        )
    result = evaluate_rules(
        database.open(),
        rules=[CONSECUTIVE_FAILURES_RULE],
        on_alert=alert_logger(context.log),
        exclude_run_ids=runs_to_be_retried(context.instance),
    )
    if not result.raised:
        return dg.SkipReason(f"run {run.run_id} failed; {result.summary()}")
    return None


@dg.sensor(
    name="missed_sync_sensor",
    minimum_interval_seconds=MISSED_SYNC_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Raises a no_recent_success alert when no sync succeeded within no_success_alert_hours (one per "
    "silent period), and evaluates the consecutive-failure rule for syncs that ran outside this Dagster instance.",
)
def missed_sync_sensor(context: dg.SensorEvaluationContext, database: SyncDatabase):
    result = evaluate_rules(
        database.open(),
        rules=ALL_RULES,
        on_alert=alert_logger(context.log),
        exclude_run_ids=runs_to_be_retried(context.instance),
    )
    if not result.raised:
        return dg.SkipReason(result.summary())
    return None


@dg.sensor(
    name="alert_delivery_sensor",
    minimum_interval_seconds=DELIVERY_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Delivers alerts from the outbox: e-mail to email_recipients through the SYNC_SMTP_* server (at most "
    "one per alert type per email_min_interval_minutes) and to each configured chat channel — Slack, Teams, a plain "
    "webhook (per channel and type, chat_min_interval_minutes). An alert raised while a channel is down is sent when "
    "it is back; each alert reaches each channel at most once.",
)
def alert_delivery_sensor(context: dg.SensorEvaluationContext, database: SyncDatabase, webhooks: AlertWebhooks):
    report = deliver_due(database.open(), webhooks=webhooks.webhooks())
    for sent in report.sent:
        context.log.info(f"e-mailed {sent.alert_type} alert(s) {list(sent.alert_ids)}: {sent.subject}")
    if report.failed:
        context.log.warning(f"alert e-mail failed, will retry on the next tick: {report.failed['error']}")
    for channel in report.chat:  # channels are named by host/*** only
        (context.log.warning if channel.failed else context.log.info)(channel.summary())
    if not report.sent and not any(c.sent for c in report.chat):
        return dg.SkipReason(report.summary() if report.pending else "no alert is owed an e-mail")
    return None


alert_sensors: list[dg.SensorDefinition] = [consecutive_failures_sensor, missed_sync_sensor, alert_delivery_sensor]
