from dagster import Config, DailyPartitionsDefinition

# Upload days, UTC; end_offset=1 so today's uploads have a partition before the day ends.
upload_days = DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)


class DocumentBatch(Config):
    """Which documents of the partition's day a run processes; empty means all of them."""

    document_ids: list[int] = []
