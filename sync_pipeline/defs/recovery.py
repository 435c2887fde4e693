"""The operator's resync of chosen sellers: a job whose launchpad takes the seller numbers.

No `from __future__ import annotations` here: Dagster reads the context and config annotations at definition time.
"""

import dagster as dg
from pydantic import Field

from sync_pipeline.defs.assets import POOL, progress_logger
from sync_pipeline.defs.checks import SELLERS_TABLE
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.defs.results import check_evaluations, resync_metadata
from sync_pipeline.services.resync import normalise_seller_numbers, resync_from_source

PROBLEMS_SHOWN = 20  # sellers named in a failed run's description; the metadata and the audit log have them all


class SellerResyncConfig(dg.Config):
    """Which sellers to rewrite from the sheet."""

    seller_numbers: list[str] = Field(
        description="Seller numbers to resync from the sheet, e.g. [AA12345, AB00001], typed any way the sheet "
        "accepts (full-width, lower case, spaces). Each is rewritten from its sheet row even when the database says "
        "it is unchanged or the application edited it since (the operator's choice wins). Numbers that are not "
        "valid rows in the sheet are reported and fail the run.",
    )


@dg.op(pool=POOL)
def resync_sellers(
    context: dg.OpExecutionContext, config: SellerResyncConfig, database: SyncDatabase, sheet: SellerSheet
) -> dict:
    """Read the sheet now and rewrite exactly the chosen sellers from it, then verify; fails when any is left over."""
    if not normalise_seller_numbers(config.seller_numbers):
        raise dg.Failure(description="give at least one seller number, e.g. seller_numbers: [AA12345]")
    result = resync_from_source(
        database.open(),
        sheet.build(),
        config.seller_numbers,
        # A run the retry sensor launched says so in the audit log (its tags name the sellers it retries).
        trigger=context.run.tags.get("sync_pipeline/trigger", "seller_resync_job"),
        run_id=context.run.run_id,
        progress=progress_logger(context),
    )
    context.log_event(
        dg.AssetMaterialization(
            asset_key=SELLERS_TABLE,
            description=f"resync of {len(result.requested)} chosen seller(s) by seller_resync_job",
            metadata=resync_metadata(result),
        )
    )
    if result.verification is not None:  # the Checks tab shows the database as the resync left it
        for evaluation in check_evaluations(result.verification):
            context.log_event(evaluation)  # type: ignore[arg-type]  # accepted since 1.7; the hint lags
    _refresh_sync_health(context, database)
    if not result.ok:
        problems = result.problems()
        more = len(problems) - PROBLEMS_SHOWN
        raise dg.Failure(
            description="; ".join(problems[:PROBLEMS_SHOWN]) + (f"; and {more} more" if more > 0 else ""),
            metadata=resync_metadata(result),
        )
    return result.as_dict()


def _refresh_sync_health(context: dg.OpExecutionContext, database: SyncDatabase) -> None:
    """Record sync_health as the resync left the database: its gap count and open alerts follow every write."""
    from sync_pipeline.defs.health import SYNC_HEALTH, health_metadata  # defs.health imports this module's job
    from sync_pipeline.services.health import health

    figures = health(database.open())
    context.log_event(
        dg.AssetMaterialization(
            asset_key=SYNC_HEALTH,
            description="refreshed after seller_resync_job wrote sellers",
            metadata=health_metadata(figures),
        )
    )


@dg.job(
    description="Resync chosen sellers by hand: give their seller numbers in the launchpad "
    "(ops: resync_sellers: config: seller_numbers: [AA12345]). Each is rewritten from the sheet and verified; the run "
    "fails, naming them, when any cannot be repaired.",
    tags={"sync_pipeline/trigger": "seller_resync_job"},
)
def seller_resync_job() -> None:
    resync_sellers()
