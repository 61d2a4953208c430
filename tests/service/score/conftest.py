"""Running `python -m service.score` in-process on the tiny models, and reading what it wrote; a real
S3-compatible server on loopback for inputs in object storage."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs
import pyarrow.parquet as pq
import pytest

from service.score.__main__ import main
from service.score.checkpoint import Checkpoint

PROBABILITIES = ("probability", "probability_negative", "probability_positive", "probability_red",
                 "probability_green", "probability_blue")


@dataclass
class Run:
    status: int
    stderr: str


@pytest.fixture
def score(artifacts_dir: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """`score(*arguments)`: the command's exit status and what it wrote on stderr."""
    monkeypatch.setenv("SERVICE_ARTIFACTS_DIR", str(artifacts_dir))

    def run(*arguments: object) -> Run:
        status = main([str(argument) for argument in arguments])
        return Run(status, capsys.readouterr().err)

    return run


@contextmanager
def crash_after(monkeypatch: pytest.MonkeyPatch, commits: int) -> Iterator[None]:
    """The job stops (as on Ctrl-C) while writing the part after `commits` parts, leaving it half-written."""
    real = Checkpoint.commit
    done = 0

    def commit(self: Checkpoint, first: int, end: int, write: Callable[[Path], None]) -> None:
        nonlocal done
        if done == commits:
            write(self.folder / f"part-{first:012d}-{end:012d}{self.extension}.tmp")
            raise KeyboardInterrupt
        done += 1
        real(self, first, end, write)

    with monkeypatch.context() as patch:
        patch.setattr(Checkpoint, "commit", commit)
        yield


def write_texts(path: Path, records: list[dict[str, Any]], encoding: str = "utf-8") -> Path:
    """`records` as the file's format (from its extension): CSV with a header, JSON Lines or Parquet."""
    if path.suffix == ".csv":
        names = list(dict.fromkeys(name for record in records for name in record))
        with open(path, "w", encoding=encoding, newline="") as handle:
            writer = csv.DictWriter(handle, names)
            writer.writeheader()
            writer.writerows(records)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding=encoding)
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The output's rows, with CSV's text turned into the values the other formats hold."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for name, value in row.items():
            if value == "":
                row[name] = None
            elif name in ("row", "version"):
                row[name] = int(value)
            elif name in PROBABILITIES:
                row[name] = float(value)
    return rows


@contextmanager
def s3_server() -> Iterator[str]:
    """A real S3-compatible server (moto's, in a thread of this process) on 127.0.0.1 and a free port: its
    endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_environment(endpoint: str, home: Path) -> dict[str, str]:
    """What a user of S3-compatible storage sets (docs/scoring.md), and nothing of this machine's own AWS
    configuration: every request goes to `endpoint`, none to AWS or to an instance's metadata service."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
    }


AWS_VARIABLES_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION")


@dataclass
class Bucket:
    """A bucket of its own on the loopback server."""

    name: str
    endpoint: str

    @property
    def uri(self) -> str:
        return f"s3://{self.name}"

    def filesystem(self) -> Any:
        return pyarrow.fs.S3FileSystem(endpoint_override=self.endpoint, access_key="testing", secret_key="testing",
                                       region="us-east-1", allow_bucket_creation=True)

    def upload(self, local: Path, key: str) -> str:
        """A file, or every file below a folder (hidden ones too), to `key`: its URI. One PutObject each with
        boto3 (pyarrow's streams make a multipart upload of three requests even for a small file)."""
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1")
        if local.is_dir():
            for file in sorted(path for path in local.rglob("*") if path.is_file()):
                client.put_object(Bucket=self.name, Key=f"{key}/{file.relative_to(local).as_posix()}",
                                  Body=file.read_bytes())
            return f"{self.uri}/{key}/"
        client.put_object(Bucket=self.name, Key=key, Body=local.read_bytes())
        return f"{self.uri}/{key}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A new bucket, and this process's environment set to reach it as a user would (AWS_* variables)."""
    for name in AWS_VARIABLES_CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_environment(s3_endpoint, tmp_path_factory.mktemp("aws-home")).items():
        monkeypatch.setenv(name, value)
    bucket = Bucket(f"in-{uuid.uuid4().hex[:12]}", s3_endpoint)
    bucket.filesystem().create_dir(bucket.name)
    return bucket
