"""Object storage: `s3://bucket/prefix` locations on any S3-compatible service.

The endpoint comes from `S3_ENDPOINT_URL` (unset: AWS itself) and the credentials and
region from the usual `AWS_*` variables, which boto3 reads. boto3 is imported only when
an s3:// location is used, so a service without one starts as fast as before.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["S3Location", "is_s3", "s3_client"]

PREFIX = "s3://"


def is_s3(location: str) -> bool:
    return location.startswith(PREFIX)


class S3Location:
    """A bucket and a key prefix (no leading or trailing slash; may be empty)."""

    def __init__(self, location: str) -> None:
        if not is_s3(location):
            raise ValueError(f"{location!r} is not an s3://bucket/prefix location")
        bucket, _, prefix = location[len(PREFIX) :].partition("/")
        if not bucket:
            raise ValueError(f"{location!r} names no bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def relative(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    def __str__(self) -> str:
        return f"{PREFIX}{self.bucket}/{self.prefix}"


def s3_client() -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)


def list_keys(client: Any, location: S3Location) -> list[str]:
    """Every key under the location's prefix, in name order."""
    keys: list[str] = []
    prefix = f"{location.prefix}/" if location.prefix else ""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", ()))
    return sorted(keys)


def read_object(client: Any, location: S3Location, key: str, limit: int) -> bytes:
    """An object's bytes; ValueError if it is over `limit` bytes."""
    body = client.get_object(Bucket=location.bucket, Key=key)["Body"]
    try:
        data: bytes = body.read(limit + 1)
    finally:
        body.close()
    if len(data) > limit:
        raise ValueError(f"the object is over the {limit} bytes an archive may have")
    return data
