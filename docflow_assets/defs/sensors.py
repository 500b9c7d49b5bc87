import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from docflow_assets.defs.jobs import process_documents_job, score_documents_job, train_model_job
from docflow_assets.defs.partitions import training_snapshots
from docflow_assets.defs.resources import DocflowResource
from docflow_assets.ml.training_set import (
    labels_digest,
    retrain_decision,
    snapshot_partition_key,
)
from docflow_assets.store.models import utcnow

# How many batches one tick asks for at most: the rest wait for the next tick.
BATCHES_PER_TICK = 10
PROCESSING_ASSETS = ("raw_documents", "ocr_text", "tfidf_features", "predictions")
# Longer than a run takes to be queued and started on a busy machine.
STALLED_AFTER = timedelta(minutes=5)
ACTIVE_RUN_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def batch_run_config(
    document_ids: list[int], assets: Sequence[str] = PROCESSING_ASSETS
) -> dict[str, object]:
    config = {"config": {"document_ids": document_ids}}
    return {"ops": {name: config for name in assets}}


def run_document_ids(run: DagsterRun) -> list[int]:
    """The documents a processing or scoring run was launched for (empty: the whole day)."""
    ops = run.run_config.get("ops", {}) if isinstance(run.run_config, dict) else {}
    for name in PROCESSING_ASSETS:
        ids = ops.get(name, {}).get("config", {}).get("document_ids")
        if ids:
            return [int(document_id) for document_id in ids]
    return []


def documents_in_active_runs(instance: DagsterInstance) -> set[int]:
    """Documents that a queued or running processing or scoring run will handle."""
    return {
        document_id
        for job in (process_documents_job, score_documents_job)
        for run in instance.get_runs(
            filters=RunsFilter(job_name=job.name, statuses=ACTIVE_RUN_STATUSES)
        )
        for document_id in run_document_ids(run)
    }


def balanced_batches(ids: list[int], batch_size: int) -> list[list[int]]:
    """``ids`` in the fewest runs of at most ``batch_size``, dealt out in turn: 240 at 200 are
    two runs of 120 that the two run slots read at once (not 200, then 40 alone), and a stretch
    of heavy uploads (one sender's long PDFs) is shared between them, so they end together."""
    count = -(-len(ids) // batch_size)
    return [ids[n::count] for n in range(count)]


def batch_requests(
    documents: Iterable[tuple[int, date]],
    batch_size: int,
    key_prefix: str | None,
    assets: Sequence[str] = PROCESSING_ASSETS,
    tags: Mapping[str, str] | None = None,
) -> list[RunRequest]:
    """Runs of at most ``batch_size`` documents (id, upload day) of one day over ``assets``;
    ``key_prefix`` None: no run-key dedupe."""
    by_day: dict[str, list[int]] = defaultdict(list)
    for document_id, upload_day in documents:
        by_day[upload_day.isoformat()].append(document_id)
    requests = []
    for day, ids in sorted(by_day.items()):
        for batch in balanced_batches(ids, batch_size):
            requests.append(
                RunRequest(
                    run_key=f"{key_prefix}-{batch[0]}-{batch[-1]}" if key_prefix else None,
                    partition_key=day,
                    run_config=batch_run_config(batch, assets),
                    tags={
                        "docflow/documents": f"{batch[0]}-{batch[-1]}",
                        "docflow/count": str(len(batch)),
                        "docflow/recovered": str(key_prefix is None).lower(),
                        **(tags or {}),
                    },
                )
            )
    return requests


@sensor(
    job=process_documents_job,
    # Upload-to-run latency; a tick is two indexed queries. Under the daemon's 5 s loop, so the
    # sensor ticks every loop: at 5 s a tick landing a moment early waited for the next loop.
    minimum_interval_seconds=3,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Launches a processing run for each batch of new uploads (cursor: last id seen), and "
        "again for uploads that have waited too long behind the cursor (a lost run)."
    ),
)
def new_uploads_sensor(
    context: SensorEvaluationContext, docflow: DocflowResource
) -> SensorResult | SkipReason:
    after_id = int(context.cursor or 0)
    batch_size = docflow.settings().batch_size
    limit = batch_size * BATCHES_PER_TICK
    waiting_uploads = docflow.service().uploads_waiting(after_id, utcnow() - STALLED_AFTER, limit)
    documents, waiting = waiting_uploads.new, waiting_uploads.stalled
    if waiting:
        active = documents_in_active_runs(context.instance)
        waiting = [document for document in waiting if document.id not in active]
    requests = batch_requests(documents, batch_size, "documents") + batch_requests(
        waiting, batch_size, None
    )
    if not requests:
        return SkipReason(f"no new uploads after document {after_id}")
    if waiting:
        context.log.warning(f"re-requesting {len(waiting)} stalled documents")
    return SensorResult(
        run_requests=requests, cursor=str(documents[-1].id) if documents else context.cursor
    )


# Scoring runs queued or running at once: a deploy on a large home re-scores in this many
# runs at a time, queued behind new uploads (lower run priority), never ahead of them.
SCORING_RUNS_IN_FLIGHT = 2
SCORING_PRIORITY = "-1"
SCORING_ASSETS = ("tfidf_features", "predictions")


@sensor(
    job=score_documents_job,
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Has the served model score what waits for it: documents read but never predicted "
        "(read before any model was deployed), and after a deploy those that "
        "DOCFLOW_RESCORE_ON_DEPLOY hands it (unconfirmed: no label yet). Runs of "
        "DOCFLOW_BATCH_SIZE per upload day, at most "
        f"{SCORING_RUNS_IN_FLIGHT} at a time, queued behind processing runs."
    ),
)
def model_scoring_sensor(
    context: SensorEvaluationContext, docflow: DocflowResource
) -> SensorResult | SkipReason:
    in_flight = context.instance.get_runs(
        filters=RunsFilter(job_name=score_documents_job.name, statuses=ACTIVE_RUN_STATUSES)
    )
    room = SCORING_RUNS_IN_FLIGHT - len(in_flight)
    if room <= 0:
        return SkipReason(f"{len(in_flight)} scoring runs are in flight")
    batch_size = docflow.settings().batch_size
    backlog = docflow.service().scoring_backlog(
        room * batch_size, exclude=documents_in_active_runs(context.instance)
    )
    if backlog.model_version is None:
        return SkipReason("no model is served yet")
    if not backlog.documents:
        return SkipReason(f"every document has version {backlog.model_version}'s prediction")
    requests = batch_requests(
        backlog.documents,
        batch_size,
        None,
        SCORING_ASSETS,
        {"dagster/priority": SCORING_PRIORITY, "docflow/model_version": backlog.model_version},
    )[:room]
    context.log.info(
        f"version {backlog.model_version} scores {len(backlog.documents)} documents "
        f"in {len(requests)} runs"
    )
    return SensorResult(run_requests=requests)


# A training that failed before it took its snapshot (a long outage) is asked for again after
# this long, not on every tick.
TRAINING_RETRY_AFTER_SECONDS = 3600.0


@sensor(
    job=train_model_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Takes a training snapshot (a new partition of the model assets) and trains on it: the "
        "first labels, a class no model has seen, DOCFLOW_RETRAIN_MIN_NEW_LABELS new or "
        "changed labels, or a model older than DOCFLOW_MODEL_MAX_AGE_DAYS. Waits while "
        "labelled documents are still being processed, DOCFLOW_RETRAIN_MAX_HOLD_MINUTES at most."
    ),
)
def training_snapshot_sensor(
    context: SensorEvaluationContext, docflow: DocflowResource
) -> SensorResult | SkipReason:
    settings = docflow.settings()
    training = context.instance.get_runs(
        filters=RunsFilter(job_name=train_model_job.name, statuses=ACTIVE_RUN_STATUSES), limit=1
    )
    if training:
        return SkipReason(f"training run {training[0].run_id} is in flight")
    service = docflow.service()
    labels_now = service.labels_now()
    labels, in_processing = labels_now.labels, labels_now.labelled_documents_still_in_ocr
    previous = service.snapshot_labels()
    trained = context.instance.get_latest_materialization_event(AssetKey("document_classifier"))
    last = json.loads(context.cursor) if context.cursor else {}
    held_since = last.pop("held_since", None)
    decision = retrain_decision(
        previous,
        labels,
        in_processing,
        settings.retrain_min_new_labels,
        timedelta(seconds=time.time() - trained.timestamp) if trained else None,
        timedelta(days=settings.model_max_age_days),
        timedelta(seconds=time.time() - held_since) if held_since else None,
        timedelta(minutes=settings.retrain_max_hold_minutes),
    )
    if not decision.snapshot:
        # The cursor remembers since when a due snapshot has been held back.
        if decision.held_back:
            last["held_since"] = held_since or time.time()
        return SensorResult(skip_reason=decision.reason, cursor=json.dumps(last))
    digest = labels_digest(labels)
    if last.get("labels") == digest and time.time() - last["at"] < TRAINING_RETRY_AFTER_SECONDS:
        return SkipReason(f"already asked to train on these labels ({decision.reason})")
    partition = snapshot_partition_key(datetime.now(UTC))
    context.log.info(f"training snapshot {partition}: {decision.reason}")
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=partition, partition_key=partition, tags={"docflow/why": decision.reason}
            )
        ],
        dynamic_partitions_requests=[training_snapshots.build_add_request([partition])],
        cursor=json.dumps({"labels": digest, "at": time.time()}),
    )


def _will_be_retried(run: DagsterRun, instance: DagsterInstance) -> bool:
    if not instance.run_retries_enabled:
        return False
    allowed = int(run.tags.get("dagster/max_retries", instance.run_retries_max_retries))
    return int(run.tags.get("dagster/retry_number", "0")) < allowed


def _is_wrapper(class_name: str | None) -> bool:
    return class_name is None or class_name.startswith("Dagster") or class_name == "RetryRequested"


def _failure_summary(context: RunFailureSensorContext) -> str:
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        # Dagster wraps the asset's exception (and a retry request); skip to the asset's own.
        while error is not None and error.cause is not None and _is_wrapper(error.cls_name):
            error = error.cause
        if error is not None:
            return f"step {event.step_key}: {error.message.strip()}"
    return context.failure_event.message or "unknown error"


@run_failure_sensor(
    monitored_jobs=[process_documents_job, score_documents_job],
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description=(
        "When a processing run has failed for the last time (the daemon retries it first), "
        "marks its unfinished documents failed with the run's error, so none stays waiting."
    ),
)
def failed_documents_sensor(context: RunFailureSensorContext, docflow: DocflowResource) -> None:
    run = context.dagster_run
    if _will_be_retried(run, context.instance):
        context.log.info(f"run {run.run_id} will be retried by the daemon")
        return
    document_ids = run_document_ids(run)
    if not document_ids:
        return
    reason = f"processing run {run.run_id} failed: {_failure_summary(context)}"
    failed = docflow.service().fail_unfinished(document_ids, reason)
    context.log.warning(f"marked {failed} documents of run {run.run_id} failed")
