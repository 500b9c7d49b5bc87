"""Object store for original files and artefacts: a local folder or an S3-compatible bucket."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol


class ObjectNotFound(KeyError):
    pass


class StoreUnavailable(OSError):
    """The object store did not answer; the caller may try again later."""


class ObjectStore(Protocol):
    url: str

    def put_file(self, key: str, source: BinaryIO, content_type: str) -> None: ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str) -> list[str]: ...

    def ping(self) -> None: ...


class LocalObjectStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put_file(self, key: str, source: BinaryIO, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target, then rename: a reader never sees half a file.
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                source.seek(0)
                while chunk := source.read(1 << 20):
                    handle.write(chunk)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        import io

        self.put_file(key, io.BytesIO(data), content_type)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as error:
            raise ObjectNotFound(key) from error

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a folder: ``features/2026-11-28/``)."""
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".upload-")
        )

    def ping(self) -> None:
        if not self.root.is_dir():
            raise OSError(f"object store folder {self.root} is missing")


class S3ObjectStore:
    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client("s3")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        from botocore.exceptions import ConnectionError, HTTPClientError

        try:
            yield
        except (ConnectionError, HTTPClientError) as error:
            raise StoreUnavailable(f"object store {self.url} is unreachable: {error}") from error

    def put_file(self, key: str, source: BinaryIO, content_type: str) -> None:
        source.seek(0)
        with self._reachable():
            self.client.upload_fileobj(
                source, self.bucket, self._key(key), ExtraArgs={"ContentType": content_type}
            )

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        with self._reachable():
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
            )

    def get_bytes(self, key: str) -> bytes:
        with self._reachable():
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except self.client.exceptions.NoSuchKey as error:
                raise ObjectNotFound(key) from error
            return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with self._reachable():
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    return False
                raise
            return True

    def delete(self, key: str) -> None:
        with self._reachable():
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, without the store's own prefix."""
        own = f"{self.prefix}/" if self.prefix else ""
        found = []
        with self._reachable():
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                found += [item["Key"].removeprefix(own) for item in page.get("Contents", [])]
        return sorted(found)

    def ping(self) -> None:
        with self._reachable():
            self.client.head_bucket(Bucket=self.bucket)


def s3_location(location: str) -> tuple[str, str] | None:
    """Bucket and prefix of an ``s3://bucket/prefix`` location; None for a local folder."""
    if not location.startswith("s3://"):
        return None
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def open_object_store(location: str, endpoint_url: str | None = None) -> ObjectStore:
    """A store for ``s3://bucket/prefix`` or a local folder path."""
    s3 = s3_location(location)
    if s3 is not None:
        import boto3
        from botocore.config import Config

        bucket, prefix = s3
        # A few quick retries ride out a blip; an outage surfaces as StoreUnavailable fast.
        config = Config(
            connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 3}
        )
        client = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        return S3ObjectStore(bucket, prefix, client)
    return LocalObjectStore(location)
