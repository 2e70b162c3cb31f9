"""A real S3-compatible server on loopback for the object-storage tests: moto's, started once per session.

Import the fixtures into a test module (`from tests.s3_helpers import moto_endpoint, s3_env, s3_bucket`).
A test asks for `s3_bucket`: an empty bucket of its own, with the standard AWS variables pointing
s3fs (and any subprocess the test starts) at the server for that test only. Tests are skipped when
moto or s3fs is not installed (`pip install -e '.[test,s3]'`).
"""

from __future__ import annotations

import logging
import uuid

import pytest


@pytest.fixture(scope="session")
def moto_endpoint():
    """http://127.0.0.1:<free port> of a moto server in a thread of this process."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(moto_endpoint, monkeypatch, tmp_path) -> dict[str, str]:
    """The AWS variables s3fs/botocore read, set for this test only (a user's ~/.aws is not read)."""
    env = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return env


@pytest.fixture
def s3_bucket(s3_env) -> str:
    """s3://<a new, empty bucket>."""
    import s3fs

    name = f"fgm-test-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"
