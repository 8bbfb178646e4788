"""Where attachment bytes live: local disk by default, S3-compatible object storage when
`S3_BUCKET` is configured.

Every value is read from Django settings first (so tests can override it with the
`settings` fixture) and then from the environment; the storage is built per distinct
configuration, never frozen into a process-wide global. Keys always start with the
tenant's schema: `tenants/<schema>/attachments/<uuid4>/<filename>`.
"""

import logging
import os
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage
from storages.backends.s3 import S3Storage

logger = logging.getLogger("tickets.storage")

# Presigned download URLs are handed out after the access check; keep them short.
PRESIGNED_URL_SECONDS = 60


@dataclass(frozen=True)
class StorageConfig:
    local_root: str
    bucket: str
    endpoint_url: str | None
    region: str | None
    access_key: str | None
    secret_key: str | None
    addressing_style: str | None


def _setting(name: str, default: str | None = None) -> str | None:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return value or default


def storage_config() -> StorageConfig:
    endpoint_url = _setting("S3_ENDPOINT_URL")
    return StorageConfig(
        local_root=str(Path(settings.MEDIA_ROOT) / "attachments"),
        bucket=_setting("S3_BUCKET", "") or "",
        endpoint_url=endpoint_url,
        region=_setting("S3_REGION", "us-east-1"),
        access_key=_setting("AWS_ACCESS_KEY_ID"),
        secret_key=_setting("AWS_SECRET_ACCESS_KEY"),
        # S3-compatible servers (MinIO, moto, Ceph) usually want path-style addressing.
        addressing_style=_setting("S3_ADDRESSING_STYLE", "path" if endpoint_url else None),
    )


class AttachmentS3Storage(S3Storage):
    """S3Storage that stores the sniffed content type and never a guessed encoding
    (`report.tar.gz` must not be served with `Content-Encoding: gzip`)."""

    def _get_write_parameters(self, name: str, content: Any = None) -> dict[str, Any]:
        params = self.get_object_parameters(name)
        params["ContentType"] = getattr(content, "content_type", None) or "application/octet-stream"
        return params


@lru_cache(maxsize=8)
def _storage_for(config: StorageConfig) -> Storage:
    if not config.bucket:
        return FileSystemStorage(location=config.local_root)
    return AttachmentS3Storage(
        bucket_name=config.bucket,
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        access_key=config.access_key,
        secret_key=config.secret_key,
        addressing_style=config.addressing_style,
        signature_version="s3v4",
        querystring_auth=True,
        querystring_expire=PRESIGNED_URL_SECONDS,
        file_overwrite=True,  # keys carry a fresh uuid4: never an existing object
        default_acl=None,
    )


def attachment_storage() -> Storage:
    """The storage for attachments under the current configuration."""
    return _storage_for(storage_config())


def storage_is_local(storage: Storage) -> bool:
    return isinstance(storage, FileSystemStorage)


def attachment_key_new(*, schema_name: str, filename: str) -> str:
    return f"tenants/{schema_name}/attachments/{uuid.uuid4()}/{filename}"


def attachment_object_delete(*, storage: Storage, key: str) -> None:
    """Delete a stored object; on local disk also its now empty uuid folder. Failures are
    logged, not raised: this runs after commit or while cleaning up a failed upload."""
    try:
        storage.delete(key)
        if storage_is_local(storage):
            folder = Path(storage.path(key)).parent
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    except Exception:
        logger.exception("could not delete attachment object %s", key)


def attachment_download_url(
    *, storage: Storage, key: str, content_disposition: str, content_type: str
) -> str:
    """A short-lived presigned URL that answers with our headers, not the object's."""
    if not isinstance(storage, S3Storage):
        raise TypeError("presigned URLs need object storage")
    return storage.url(
        key,
        parameters={
            "ResponseContentDisposition": content_disposition,
            "ResponseContentType": content_type,
        },
        expire=PRESIGNED_URL_SECONDS,
    )
