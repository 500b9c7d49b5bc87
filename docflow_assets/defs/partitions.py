import logging
from datetime import UTC, date, datetime

from dagster import Config, DailyPartitionsDefinition, DynamicPartitionsDefinition
from sqlalchemy.exc import SQLAlchemyError

from docflow_assets.document_service import DocumentService
from docflow_assets.settings import DATABASE_FILE, DocflowSettings

# The run tag that names a run's partition.
PARTITION_TAG = "dagster/partition"
# When the database cannot be read as the code location loads: early enough for any upload.
START_WHEN_UNREADABLE = date(2024, 1, 1)

logger = logging.getLogger(__name__)


def partitions_start(settings: DocflowSettings) -> date:
    """The first upload day: DOCFLOW_PARTITIONS_START, else the first upload's day, else today.
    The Dagster UI then counts the days that can hold documents, not every day since 2024."""
    if settings.partitions_start is not None:
        return settings.partitions_start
    today = datetime.now(UTC).date()
    home = settings.home.expanduser().resolve()
    if settings.database_url is None and not (home / DATABASE_FILE).exists():
        return today  # a new home; loading the code location must not create it
    try:
        return DocumentService.from_settings(settings).first_upload_day() or today
    except SQLAlchemyError as error:
        logger.warning("upload days start at %s: %s", START_WHEN_UNREADABLE, error)
        return START_WHEN_UNREADABLE


# Upload days, UTC; end_offset=1 so today's uploads have a partition before the day ends.
upload_days = DailyPartitionsDefinition(
    start_date=partitions_start(DocflowSettings()).isoformat(), end_offset=1
)


class DocumentBatch(Config):
    """Which documents of the partition's day a run processes; empty means all of them."""

    document_ids: list[int] = []


# One partition per training snapshot, named by when it was taken (training_snapshot_sensor
# and `docflow train` add them): each trained model is one partition of document_classifier.
TRAINING_SNAPSHOTS = "training_snapshots"
training_snapshots = DynamicPartitionsDefinition(name=TRAINING_SNAPSHOTS)
