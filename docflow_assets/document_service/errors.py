"""What the service refuses with: each names the document and the problem."""

from datetime import datetime


class DocumentNotFound(LookupError):
    def __init__(self, document_id: int) -> None:
        super().__init__(f"document {document_id} does not exist")


class OriginalMissing(LookupError):
    """The document is registered but its original is gone from the object store."""

    def __init__(self, document_id: int) -> None:
        super().__init__(f"original file of document {document_id} is missing")


class OriginalExpired(LookupError):
    """The retention period removed the document's original (its text and predictions stay)."""

    def __init__(self, document_id: int, when: datetime) -> None:
        super().__init__(
            f"the original file of document {document_id} was deleted on {when:%Y-%m-%d} after "
            "the retention period (DOCFLOW_RETENTION_DAYS); its text and predictions are kept"
        )


class InvalidRequest(ValueError):
    """A value the caller sent that no document could take (an unknown status, a bad label)."""


class LeftToPipeline(Exception):
    """OCR of this document is too large a job to finish inside a request."""

    def __init__(self, document_id: int, why: str) -> None:
        super().__init__(
            f"document {document_id} is stored and the pipeline will read it: {why} "
            f"(poll GET /document/{document_id})"
        )
        self.document_id = document_id


class OcrBusy(Exception):
    """Every online OCR slot is taken: try again shortly."""


class NotReadYet(LookupError):
    """The document has no stored reading to export yet."""

    def __init__(self, document_id: int, status: str) -> None:
        super().__init__(
            f"document {document_id} has not been read yet (status {status}); its words can "
            "be exported once OCR has run"
        )
