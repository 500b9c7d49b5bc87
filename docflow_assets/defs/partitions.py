from dagster import Config, DailyPartitionsDefinition, DynamicPartitionsDefinition

# The run tag that names a run's partition.
PARTITION_TAG = "dagster/partition"

# Upload days, UTC; end_offset=1 so today's uploads have a partition before the day ends.
upload_days = DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)


class DocumentBatch(Config):
    """Which documents of the partition's day a run processes; empty means all of them."""

    document_ids: list[int] = []


# One partition per training snapshot, named by when it was taken (training_snapshot_sensor
# and `docflow train` add them): each trained model is one partition of document_classifier.
TRAINING_SNAPSHOTS = "training_snapshots"
training_snapshots = DynamicPartitionsDefinition(name=TRAINING_SNAPSHOTS)
