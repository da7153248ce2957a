"""A real S3-compatible server for tests: moto's standalone server on 127.0.0.1, a free port.

moto (`moto[server]`, pip-installable, no Java or Go binary to fetch) answers the S3 REST API
that s3fs/boto speak, including multipart uploads, ranged GETs and `If-None-Match` puts;
MinIO would be closer to production but is no pip package. The server runs in its own process
(as a remote store would) and is stopped with the test session. Clients find it the way
users point tools at any S3 endpoint: AWS_ENDPOINT_URL and the AWS_* credentials.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """`with S3Server() as s3:` ... `s3.endpoint` is http://127.0.0.1:PORT."""

    def __init__(self, log: Path | None = None) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> S3Server:
        out = open(self.log, "wb") if self.log else subprocess.DEVNULL
        code = "from moto.server import main; main()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **ENV},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {self.endpoint}") from None
                time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def env(self) -> dict[str, str]:
        """What a client process needs to reach this server."""
        return {**ENV, "AWS_ENDPOINT_URL": self.endpoint}

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(
            key=ENV["AWS_ACCESS_KEY_ID"],
            secret=ENV["AWS_SECRET_ACCESS_KEY"],
            client_kwargs={"endpoint_url": self.endpoint},
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def bucket(self, name: str) -> str:
        fs = self.filesystem()
        fs.mkdir(name)
        return f"s3://{name}"
