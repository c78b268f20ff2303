"""Where kept recordings go: a local directory (the default) or an S3-compatible bucket.

Both sinks take the audio's bytes and a file name derived from the call, and give back the
location that is put on the call record (`recording_path`): a filesystem path, or
`s3://bucket/key`. Either can read a recording back by that location, so the console can play
it whichever sink wrote it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import RecordingError

if TYPE_CHECKING:
    from .config import Settings

BUCKET_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")


def audio_format(audio: bytes) -> tuple[str, str]:
    """(file extension, MIME type) of a recording: Telnyx sends WAV (RIFF) or MP3."""
    return ("wav", "audio/wav") if audio[:4] == b"RIFF" else ("mp3", "audio/mpeg")


class SinkError(RecordingError):
    """A recording could not be written to or read from its sink; the message says why."""


class RecordingSink(Protocol):
    """Keeps a recording's bytes and reads them back by the location it returned."""

    def put(self, name: str, audio: bytes, content_type: str) -> str:
        """Store `audio` under `name`; return the location to record on the call."""

    def get(self, location: str) -> bytes:
        """The bytes stored at `location` (as returned by put)."""

    def delete(self, location: str) -> None:
        """Remove the recording at `location` (as returned by put); one already gone is no error."""

    def describe(self) -> str:
        """Where recordings go, for logs and start-up lines."""


@dataclass(frozen=True)
class DirectorySink:
    """Recordings as files in one directory, written whole or not at all."""

    directory: Path

    def put(self, name: str, audio: bytes, content_type: str) -> str:
        """Write the file via a temporary name, so a crash never leaves half a recording."""
        try:
            # Callers' voices: readable by the service's own user only, whatever the umask.
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = self.directory / name
            partial = path.with_name(path.name + ".part")
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                out.write(audio)
            partial.replace(path)
        except OSError as exc:
            raise SinkError(f"cannot write to {self.directory}: {exc}") from None
        return str(path)

    def get(self, location: str) -> bytes:
        """Read a recording back; only files inside this sink's directory are served."""
        path = Path(location).resolve()
        if self.directory.resolve() not in path.parents:
            raise SinkError(f"{location} is not in {self.directory}")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SinkError(f"cannot read {location}: {exc}") from None

    def delete(self, location: str) -> None:
        """Remove a recording file; only files inside this sink's directory are removed."""
        path = Path(location).resolve()
        if self.directory.resolve() not in path.parents:
            raise SinkError(f"{location} is not in {self.directory}")
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot remove {location}: {exc}") from None

    def describe(self) -> str:
        """The directory's path."""
        return str(self.directory)


class BucketSink:
    """Recordings as objects in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, ...).

    Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a
    profile, or an instance role); `endpoint_url` points at a non-AWS service.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        if client is None:
            import boto3  # imported here: only deployments that keep recordings in a bucket need it
            from botocore.config import Config

            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                                  config=Config(connect_timeout=5, read_timeout=20,
                                                retries={"max_attempts": 3, "mode": "standard"}))
        self._client = client

    def put(self, name: str, audio: bytes, content_type: str) -> str:
        """Upload the object; S3 writes are atomic, so no temporary name is needed."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = f"{self.prefix}/{name}" if self.prefix else name
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=audio, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"cannot upload to s3://{self.bucket}/{key}: {exc}") from None
        return f"s3://{self.bucket}/{key}"

    def get(self, location: str) -> bytes:
        """Download an object this sink wrote."""
        from botocore.exceptions import BotoCoreError, ClientError

        match = BUCKET_URL.match(location)
        if not match or match["bucket"] != self.bucket or not match["prefix"]:
            raise SinkError(f"{location} is not an object in s3://{self.bucket}")
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=match["prefix"])
            body: bytes = response["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"cannot read {location}: {exc}") from None
        return body

    def delete(self, location: str) -> None:
        """Delete an object this sink wrote (S3 answers a missing key with success too)."""
        from botocore.exceptions import BotoCoreError, ClientError

        match = BUCKET_URL.match(location)
        if not match or match["bucket"] != self.bucket or not match["prefix"]:
            raise SinkError(f"{location} is not an object in s3://{self.bucket}")
        try:
            self._client.delete_object(Bucket=self.bucket, Key=match["prefix"])
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"cannot delete {location}: {exc}") from None

    def describe(self) -> str:
        """The bucket URL, and the endpoint when it is not AWS."""
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where


def parse_bucket_url(value: str) -> tuple[str, str] | None:
    """(bucket, prefix) of an `s3://bucket/prefix` URL, or None when it is not one."""
    match = BUCKET_URL.match(value.strip())
    if not match:
        return None
    return match["bucket"], (match["prefix"] or "").strip("/")


def sink_from_settings(settings: Settings) -> RecordingSink:
    """The sink the settings choose: the bucket when LIFELINE_RECORDINGS_BUCKET is set, else the directory."""
    if settings.recordings_bucket:
        parsed = parse_bucket_url(settings.recordings_bucket)
        assert parsed is not None  # load_settings refused anything else
        return BucketSink(parsed[0], parsed[1], settings.recordings_s3_endpoint,
                          settings.recordings_s3_region)
    assert settings.recordings_dir is not None
    return DirectorySink(settings.recordings_dir)
