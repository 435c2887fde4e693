"""Recovery: the automatic resync of what verification found missing, and the operator's resync of chosen sellers.

No `from __future__ import annotations` here: Dagster reads the context and config annotations at definition time.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from sync_pipeline.defs.assets import GROUP, POOL, progress_logger
from sync_pipeline.defs.checks import SELLERS_TABLE, keys_markdown, verification_metadata
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.services.resync import ResyncResult, repair, resync_from_source
from sync_pipeline.services.sync import SheetRead
from sync_pipeline.services.verify import verify

GAPS_REPAIRED = "gaps_repaired"


def _resync_metadata(result: ResyncResult) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "requested": len(result.requested),
        "repaired": len(result.repaired),
        "remaining": len(result.remaining),
        "gaps_resynced": result.gaps_resynced,
        "stale_resynced": result.stale_resynced,
        "not_in_sheet": len(result.not_in_sheet),
        "resync_sync_id": result.sync_id or "",
        "parent_sync_id": result.parent_sync_id or "",
        "skipped": result.skipped or "",
        "remaining_sellers": dg.MetadataValue.md(keys_markdown(result.remaining)),
    }
    if result.not_in_sheet:
        metadata["not_in_sheet_sellers"] = dg.MetadataValue.json(dict(sorted(result.not_in_sheet.items())[:20]))
    if result.verification is not None:
        metadata.update({f"after_{k}": v for k, v in verification_metadata(result.verification).items()})
    return metadata


@dg.asset(
    group_name=GROUP,
    pool=POOL,
    kinds={"sqlalchemy"},
    check_specs=[
        dg.AssetCheckSpec(
            GAPS_REPAIRED,
            asset="seller_gap_resync",
            description="Every seller the sync's verification found missing or stale was resynced and now matches the "
            "sheet. A failure names the sellers left over; a critical alert was raised for them.",
        )
    ],
)
def seller_gap_resync(
    context: dg.AssetExecutionContext, seller_sheet: SheetRead, sellers_table: dict, database: SyncDatabase
):  # no return annotation: with checks the asset is multi-output, and Dagster would type the output as Nothing
    """Automatic recovery after every sync: the sellers the sync's verification found missing from the database
    (gaps) or differing from the sheet (stale rows) are rewritten from the same sheet snapshot — exactly those, in a
    resync of their own linked to the sync — and verified again.

    Anything still missing afterwards, or a resync that fails, raises a critical alert naming the seller numbers.
    With automatic recovery switched off (`auto_recovery` setting), nothing is written: the sellers are reported
    and alerted, and an operator repairs them with seller_resync_job. Rows the application edited after the
    sheet (kept conflicts) are never touched.
    """
    db = database.open()
    # A fresh look just before writing (cheap by design): a seller repaired meanwhile is not rewritten.
    verification = verify(db, seller_sheet)
    result = repair(db, seller_sheet, verification, run_id=context.run_id, progress=progress_logger(context))
    context.log.info(
        f"resync after sync {seller_sheet.sync_id}: {len(result.requested)} requested, {len(result.repaired)} "
        f"repaired, {len(result.remaining)} remaining" + (f" ({result.skipped})" if result.skipped else "")
    )
    repaired = not result.remaining and result.skipped in {None, "nothing to resync"}
    check = dg.AssetCheckResult(
        check_name=GAPS_REPAIRED,
        passed=repaired,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if repaired
        else (
            f"{len(result.requested)} seller(s) not resynced: {result.skipped}"
            if result.skipped
            else f"{len(result.remaining)} seller(s) still missing or stale after the resync"
        ),
        metadata={
            "remaining": len(result.remaining if not result.skipped else result.requested),
            "sellers": dg.MetadataValue.md(keys_markdown(result.remaining if not result.skipped else result.requested)),
        },
    )
    return dg.MaterializeResult(
        value={**sellers_table, "gaps_resynced": result.gaps_resynced, "resync": result.as_dict()},
        metadata=_resync_metadata(result),
        check_results=[check],
    )


class SellerResyncConfig(dg.Config):
    """Which sellers to rewrite from the sheet."""

    seller_numbers: list[str] = Field(
        description="Seller numbers to resync from the sheet, e.g. [AA12345, AB00001]. Each is rewritten from its "
        "sheet row even when the database says it is unchanged or the application edited it since (the operator's "
        "choice wins). Numbers that are not valid rows in the sheet are reported and fail the run.",
    )


@dg.op(pool=POOL)
def resync_sellers(
    context: dg.OpExecutionContext, config: SellerResyncConfig, database: SyncDatabase, sheet: SellerSheet
) -> dict:
    """Read the sheet now and rewrite exactly the chosen sellers from it, then verify; fails when any is left over."""
    if not any(k.strip() for k in config.seller_numbers):
        raise dg.Failure(description="give at least one seller number, e.g. seller_numbers: [AA12345]")
    db = database.open()
    result = resync_from_source(
        db,
        sheet.build(),
        config.seller_numbers,
        # A run the retry sensor launched says so in the audit log (its tags name the sellers it retries).
        trigger=context.run.tags.get("sync_pipeline/trigger", "seller_resync_job"),
        run_id=context.run_id,
        progress=progress_logger(context),
    )
    context.log_event(
        dg.AssetMaterialization(
            asset_key=SELLERS_TABLE,
            description=f"resync of {len(result.requested)} chosen seller(s) by seller_resync_job",
            metadata=_resync_metadata(result),
        )
    )
    if not result.ok:
        problems = [f"{k}: {why}" for k, why in sorted(result.not_in_sheet.items())]
        problems += [f"{k}: {result.failures.get(k, 'still differs from the sheet')}" for k in sorted(result.remaining)]
        raise dg.Failure(
            description="; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else ""),
            metadata=_resync_metadata(result),
        )
    return result.as_dict()


@dg.job(
    description="Resync chosen sellers by hand: give their seller numbers in the launchpad "
    "(ops: resync_sellers: config: seller_numbers: [AA12345]). Each is rewritten from the sheet and verified; the run "
    "fails, naming them, when any cannot be repaired.",
    tags={"sync_pipeline/trigger": "seller_resync_job"},
)
def seller_resync_job() -> None:
    resync_sellers()
