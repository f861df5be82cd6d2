"""A real S3-compatible server for the tests: moto in server mode, on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.processes import free_port

__all__ = ["S3Server", "running_s3"]

#: What a client of the test server needs in its environment (moto accepts any credentials).
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Server:
    endpoint: str

    @property
    def environ(self) -> dict[str, str]:
        """The variables that point fnbox (boto3) at this server."""
        return {**CREDENTIALS, "S3_ENDPOINT_URL": self.endpoint}

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )


@contextmanager
def running_s3() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer  # imported here: slow to import, and few tests need it

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
