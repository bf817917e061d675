"""A real S3-compatible server on the loopback address for tests: moto in server mode, in its own process.

Tests talk to it through the same clients a user's cluster does (s3fs over HTTP, with the endpoint from the
standard ``AWS_ENDPOINT_URL`` variable), never through a mock of the client, so subprocesses the tests start (a
build to kill, a leaderboard) reach it too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

# What a client needs to reach the server: any credentials are accepted, the region must be set.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server(*, timeout_s: float = 60.0) -> Iterator[str]:
    """Start ``moto.server`` on 127.0.0.1 and set the environment so that every client of this process and its
    children uses it; yield its endpoint URL, and stop it (and restore the environment) at the end."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {endpoint} (exit {proc.poll()})") from None
                time.sleep(0.2)
        env = {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield endpoint
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def new_bucket() -> str:
    """A fresh bucket on the server (``moto_server`` must be running); its ``s3://`` URL."""
    import s3fs

    name = f"narch-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"
