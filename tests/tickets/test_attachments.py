import hashlib
import random
import re
import struct
import urllib.request
import uuid
import zlib
from pathlib import Path

import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django_tenants.utils import schema_context
from moto.server import ThreadedMotoServer

from accounts.members.models import Membership
from eventlog.dispatch import outbox_dispatch_pending
from eventlog.models import AuditEntry, OutboxEvent
from tenants.models import Tenant
from tickets.content_services import attachment_filename_clean, attachments_add
from tickets.models import Attachment, Project, ProjectMember, TicketHistory
from tickets.services import ticket_create

REPORT = "Quarterly numbers: ünïcödé ok\n".encode() * 100


def _png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _upload(api, ticket_key: str, *files: tuple[str, bytes]):
    """Multipart upload the way a browser does it, claiming text/plain for every file."""
    response = api.client.post(
        f"/api/v1/tickets/{ticket_key}/attachments",
        {"file": [SimpleUploadedFile(name, data, "text/plain") for name, data in files]},
        headers={"Authorization": f"Bearer {api.token}"},
    )
    connection.set_schema_to_public()
    return response


def _upload_raw(api, ticket_key: str, filename: str, data: bytes):
    """Multipart with the file name exactly as given (the test client strips paths)."""
    boundary = "----content-test-boundary"
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode(),
            b"Content-Type: application/octet-stream\r\n\r\n",
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    response = api.client.generic(
        "POST",
        f"/api/v1/tickets/{ticket_key}/attachments",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    connection.set_schema_to_public()
    return response


def _rows(world):
    with schema_context(world.schema):
        rows = list(
            Attachment.objects.order_by("id").values_list(
                "filename", "content_type", "size", "checksum_sha256", "storage_key"
            )
        )
    connection.set_schema_to_public()
    return rows


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _set_limit(world, max_bytes: int) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(max_attachment_bytes=max_bytes)


@pytest.fixture
def local_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    settings.S3_BUCKET = ""
    return tmp_path / "attachments"


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(settings, tmp_path, s3_endpoint):
    """A fresh bucket on the loopback S3 server, and the settings pointing at it."""
    bucket = f"attachments-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    settings.MEDIA_ROOT = tmp_path  # nothing may land here
    settings.S3_BUCKET = bucket
    settings.S3_ENDPOINT_URL = s3_endpoint
    settings.S3_REGION = "us-east-1"
    settings.AWS_ACCESS_KEY_ID = "testing"
    settings.AWS_SECRET_ACCESS_KEY = "testing"
    client.bucket = bucket
    return client


def _keys(s3) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]


def _key_pattern(world, filename: str) -> re.Pattern:
    return re.compile(
        rf"tenants/{world.schema}/attachments/[0-9a-f]{{8}}-[0-9a-f-]{{27}}/{re.escape(filename)}"
    )


def _no_proxy_get(url: str):
    return urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=10)


def test_round_trip_on_local_disk(
    admin_a, make_ticket, world_a, local_root, django_capture_on_commit_callbacks
):
    # given
    ticket = make_ticket()
    digest = hashlib.sha256(REPORT).hexdigest()
    # when uploaded
    created = _upload(admin_a, ticket.key, ("report.txt", REPORT), ("pixel.png", _png()))
    # then
    assert created.status_code == 201, created.content
    first, second = created.json()
    assert first["filename"] == "report.txt"
    assert first["content_type"] == "text/plain"
    assert first["size"] == len(REPORT)
    assert first["checksum_sha256"] == digest
    assert first["uploader"]["id"] == world_a.admin.pk
    assert first["download_url"] == f"/api/v1/attachments/{first['id']}/download"
    assert second["content_type"] == "image/png"
    [(_, _, _, _, key), _] = _rows(world_a)
    assert _key_pattern(world_a, "report.txt").fullmatch(key)
    assert (local_root / key).read_bytes() == REPORT
    # when listed and downloaded
    listed = admin_a.get(f"/api/v1/tickets/{ticket.key}/attachments")
    download = admin_a.get(f"/api/v1/attachments/{first['id']}/download")
    # then
    assert listed.json()["total"] == 2
    assert listed.json()["items"] == [first, second]
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == REPORT
    assert download["Content-Type"] == "text/plain; charset=utf-8"
    assert download["Content-Disposition"] == (
        "attachment; filename=\"report.txt\"; filename*=UTF-8''report.txt"
    )
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Length"] == str(len(REPORT))
    # when deleted
    with django_capture_on_commit_callbacks(execute=True):
        deleted = admin_a.delete(f"/api/v1/tickets/{ticket.key}/attachments/{first['id']}")
    # then the row, the file and its folder are gone; history, audit and outbox recorded it
    assert deleted.status_code == 204
    assert not (local_root / key).exists()
    assert not (local_root / key).parent.exists()
    assert [row[0] for row in _rows(world_a)] == ["pixel.png"]
    assert len(_files_under(local_root)) == 1
    gone = admin_a.get(f"/api/v1/attachments/{first['id']}/download")
    assert gone.status_code == 404
    with schema_context(world_a.schema):
        history = list(
            TicketHistory.objects.filter(field="attachment")
            .order_by("id")
            .values_list("from_value", "to_value", "from_ref", "to_ref")
        )
        assert history == [
            (None, "report.txt", None, first["id"]),
            (None, "pixel.png", None, second["id"]),
            ("report.txt", None, first["id"], None),
        ]
        assert AuditEntry.objects.get(action="attachment.deleted").changes == {
            "attachment": ["report.txt", None]
        }
        assert OutboxEvent.objects.get(kind="attachment.created").payload == {
            "key": ticket.key,
            "attachments": [
                {"id": first["id"], "filename": "report.txt", "size": len(REPORT)},
                {"id": second["id"], "filename": "pixel.png", "size": len(_png())},
            ],
        }
        assert OutboxEvent.objects.get(kind="attachment.deleted").payload == {
            "key": ticket.key,
            "attachment_id": first["id"],
            "storage_key": key,
        }


def test_round_trip_through_s3(
    admin_a, make_ticket, world_a, s3, tmp_path, django_capture_on_commit_callbacks
):
    # given
    ticket = make_ticket()
    # when uploaded
    created = _upload(admin_a, ticket.key, ("résumé.txt", REPORT))
    # then the object sits in the bucket under the tenant's prefix, with the sniffed type
    assert created.status_code == 201, created.content
    [attachment] = created.json()
    [(_, _, _, checksum, key)] = _rows(world_a)
    assert _key_pattern(world_a, "résumé.txt").fullmatch(key)
    assert _keys(s3) == [key]
    head = s3.head_object(Bucket=s3.bucket, Key=key)
    assert head["ContentType"] == "text/plain"
    assert head["ContentLength"] == len(REPORT)
    assert checksum == hashlib.sha256(REPORT).hexdigest()
    assert _files_under(tmp_path) == []
    # when listed and downloaded
    listed = admin_a.get(f"/api/v1/tickets/{ticket.key}/attachments")
    download = admin_a.get(f"/api/v1/attachments/{attachment['id']}/download")
    # then the download is a redirect to a presigned URL that serves the bytes
    assert listed.json()["items"] == [attachment]
    assert download.status_code == 302
    assert download["Cache-Control"] == "private, no-store"
    url = download["Location"]
    assert url.startswith(f"{s3.meta.endpoint_url}/{s3.bucket}/")
    assert "X-Amz-Expires=60" in url
    with _no_proxy_get(url) as fetched:
        assert fetched.read() == REPORT
        assert fetched.headers["Content-Disposition"] == (
            "attachment; filename=\"resume.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
        )
    # when deleted
    with django_capture_on_commit_callbacks(execute=True):
        deleted = admin_a.delete(f"/api/v1/tickets/{ticket.key}/attachments/{attachment['id']}")
    # then
    assert deleted.status_code == 204
    assert _keys(s3) == []
    assert _rows(world_a) == []


def test_too_large_file_is_refused_and_nothing_is_stored(admin_a, make_ticket, world_a, local_root):
    # given a workspace limit of 1 KiB
    ticket = make_ticket()
    _set_limit(world_a, 1024)
    # when
    too_big = _upload(admin_a, ticket.key, ("ok.txt", b"a" * 10), ("big.txt", b"b" * 1025))
    # then
    assert too_big.status_code == 413
    assert too_big.json()["error"] == {
        "code": "payload_too_large",
        "message": "Attachments are limited to 1024 bytes each.",
        "details": {"max_bytes": 1024},
    }
    assert _rows(world_a) == []
    assert _files_under(local_root.parent) == []
    # when exactly at the limit
    at_limit = _upload(admin_a, ticket.key, ("edge.txt", b"c" * 1024))
    # then
    assert at_limit.status_code == 201
    assert [row[2] for row in _rows(world_a)] == [1024]


def test_too_large_file_is_refused_on_s3_and_nothing_is_stored(admin_a, make_ticket, world_a, s3):
    # given
    ticket = make_ticket()
    _set_limit(world_a, 100)
    # when
    response = _upload(admin_a, ticket.key, ("big.bin", b"x" * 101))
    # then
    assert response.status_code == 413
    assert _rows(world_a) == []
    assert _keys(s3) == []


def test_a_failure_after_storing_removes_what_was_stored(world_a, make_ticket, local_root):
    # given a second file whose declared size lies about its real size
    ticket = make_ticket()
    _set_limit(world_a, 100)
    liar = SimpleUploadedFile("liar.txt", b"z" * 500)
    liar.size = 10
    with schema_context(world_a.schema):
        actor = Membership.objects.select_related("user").get(user=world_a.admin)
        ticket.refresh_from_db()
        # when
        with pytest.raises(Exception) as raised:
            attachments_add(
                ticket=ticket,
                actor=actor,
                files=[SimpleUploadedFile("fine.txt", b"fine"), liar],
            )
        # then
        assert raised.value.status == 413
        assert not Attachment.objects.exists()
    connection.set_schema_to_public()
    assert _files_under(local_root) == []


def test_content_type_is_sniffed_from_the_bytes(admin_a, make_ticket, world_a, local_root):
    # given
    ticket = make_ticket()
    noise = random.Random(7).randbytes(4096)
    # when each file claims to be text/plain
    response = _upload(
        admin_a,
        ticket.key,
        ("photo.txt", _png()),
        ("notes.bin", "naïve café ☕\nline two\n".encode()),
        ("data.txt", noise),
        ("zeros.txt", b"\x00" * 64),
        ("page.html", b"<html><script>alert(1)</script></html>"),
    )
    # then
    assert response.status_code == 201, response.content
    assert [a["content_type"] for a in response.json()] == [
        "image/png",
        "text/plain",
        "application/octet-stream",
        "application/octet-stream",
        "text/plain",
    ]
    png = admin_a.get(f"/api/v1/attachments/{response.json()[0]['id']}/download")
    assert png["Content-Type"] == "image/png"
    assert png["Content-Security-Policy"] == "default-src 'none'; sandbox"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("a\x00b.txt", "ab.txt"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ('what<>:"|?*.txt', "what_______.txt"),
        ("  .hidden.  ", "hidden"),
        ("résumé 2024.pdf", "résumé 2024.pdf"),
        ("CON.txt", "_CON.txt"),
        ("", "file"),
        ("../..", "file"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
        ("日本" * 100 + ".txt", "日本" * 41 + "日.txt"),
    ],
)
def test_filenames_are_sanitized(raw, clean):
    # when
    result = attachment_filename_clean(raw)
    # then
    assert result == clean
    assert len(result) <= 200
    assert len(result.encode()) <= 255


def test_uploaded_names_cannot_escape_the_tenant_folder(admin_a, make_ticket, world_a, local_root):
    # given
    ticket = make_ticket()
    long_name = "n" * 250 + ".txt"
    # when
    traversal = _upload_raw(admin_a, ticket.key, "../../etc/passwd", b"root:x:0:0\n")
    windows = _upload_raw(admin_a, ticket.key, "..\\..\\win.ini", b"[boot]\n")
    nul = _upload(admin_a, ticket.key, ("a\x00b.txt", b"nul"))
    long = _upload(admin_a, ticket.key, (long_name, b"long"))
    # then
    assert [r.status_code for r in (traversal, windows, nul, long)] == [201] * 4
    names = [row[0] for row in _rows(world_a)]
    assert names == ["passwd", "win.ini", "ab.txt", "n" * 196 + ".txt"]
    prefix = f"tenants/{world_a.schema}/attachments/"
    assert all(f.startswith(prefix) for f in _files_under(local_root))
    assert len(_files_under(local_root)) == 4


def test_unicode_names_download_with_rfc_5987_disposition(admin_a, make_ticket, local_root):
    # given
    ticket = make_ticket()
    [attachment] = _upload(admin_a, ticket.key, ('Bericht "final" Ü.txt', b"hallo")).json()
    # when
    response = admin_a.get(f"/api/v1/attachments/{attachment['id']}/download")
    # then
    assert attachment["filename"] == "Bericht _final_ Ü.txt"
    assert response["Content-Disposition"] == (
        'attachment; filename="Bericht _final_ U.txt"; '
        "filename*=UTF-8''Bericht%20_final_%20%C3%9C.txt"
    )


def test_requests_without_files_are_refused(admin_a, make_ticket, local_root):
    # given
    ticket = make_ticket()
    path = f"/api/v1/tickets/{ticket.key}/attachments"
    # when
    as_json = admin_a.post(path, {"file": "aGVsbG8="})
    no_parts = admin_a.client.post(
        path, {"note": "no file"}, headers={"Authorization": f"Bearer {admin_a.token}"}
    )
    broken = admin_a.client.generic(
        "POST",
        path,
        b"--x\r\nContent-Disposition: form-data; name=",
        content_type="multipart/form-data; boundary=x",
        headers={"Authorization": f"Bearer {admin_a.token}"},
    )
    no_boundary = admin_a.client.generic(
        "POST",
        path,
        b"data",
        content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {admin_a.token}"},
    )
    connection.set_schema_to_public()
    # then
    assert as_json.status_code == 415
    assert no_parts.status_code == 422
    assert broken.status_code == 422
    assert no_boundary.status_code == 400
    assert no_boundary.json()["error"]["message"] == "The multipart body could not be read."
    assert _files_under(local_root.parent) == []


def test_invisible_tickets_answer_404_and_viewers_get_403(
    user_a, lead_a, make_ticket, project_a, private_project_a, world_a, local_root
):
    # given a private ticket with an attachment, and the user viewing CORE only
    secret = make_ticket(project=private_project_a)
    [hidden] = _upload(lead_a, secret.key, ("plans.txt", b"top secret")).json()
    ticket = make_ticket()
    [shared] = _upload(lead_a, ticket.key, ("shared.txt", b"for all")).json()
    with schema_context(world_a.schema):
        ProjectMember.objects.create(project=project_a, user=world_a.user, role="VIEWER")
    connection.set_schema_to_public()
    # when
    upload_secret = _upload(user_a, secret.key, ("x.txt", b"x"))
    list_secret = user_a.get(f"/api/v1/tickets/{secret.key}/attachments")
    download_secret = user_a.get(f"/api/v1/attachments/{hidden['id']}/download")
    delete_secret = user_a.delete(f"/api/v1/tickets/{secret.key}/attachments/{hidden['id']}")
    upload_as_viewer = _upload(user_a, ticket.key, ("y.txt", b"y"))
    delete_as_viewer = user_a.delete(f"/api/v1/tickets/{ticket.key}/attachments/{shared['id']}")
    download_as_viewer = user_a.get(f"/api/v1/attachments/{shared['id']}/download")
    # then
    assert upload_secret.status_code == 404
    assert list_secret.status_code == 404
    assert download_secret.status_code == 404
    assert delete_secret.status_code == 404
    assert b"top secret" not in download_secret.content
    assert upload_as_viewer.status_code == 403
    assert delete_as_viewer.status_code == 403
    assert download_as_viewer.status_code == 200
    assert [row[0] for row in _rows(world_a)] == ["plans.txt", "shared.txt"]
    assert len(_files_under(local_root)) == 2


def test_only_the_uploader_or_an_administrator_deletes(
    user_a, lead_a, make_ticket, world_a, local_root
):
    # given an attachment of the user
    ticket = make_ticket()
    [mine] = _upload(user_a, ticket.key, ("mine.txt", b"mine")).json()
    [leads] = _upload(lead_a, ticket.key, ("leads.txt", b"leads")).json()
    path = f"/api/v1/tickets/{ticket.key}/attachments"
    # when
    refused = user_a.delete(f"{path}/{leads['id']}")
    by_lead = lead_a.delete(f"{path}/{mine['id']}")
    # then
    assert refused.status_code == 403
    assert by_lead.status_code == 204
    assert [row[0] for row in _rows(world_a)] == ["leads.txt"]


def test_another_tenants_attachment_id_answers_404(admin_a, world_b, local_root):
    # given an attachment in tenant B
    with schema_context(world_b.schema):
        project = Project.objects.create(key="BRV", name="bravo")
        actor = Membership.objects.select_related("user").get(user=world_b.admin)
        ticket = ticket_create(project=project, actor=actor, data={"summary": "b"})
        [attachment] = attachments_add(
            ticket=ticket, actor=actor, files=[SimpleUploadedFile("b.txt", b"bravo secret")]
        )
    connection.set_schema_to_public()
    # when
    response = admin_a.get(f"/api/v1/attachments/{attachment.pk}/download")
    # then
    assert response.status_code == 404
    assert b"bravo" not in response.content


def test_more_than_twenty_files_in_one_request_are_refused(admin_a, make_ticket, local_root):
    # given
    ticket = make_ticket()
    files = [(f"f{n}.txt", b"x") for n in range(21)]
    # when
    response = _upload(admin_a, ticket.key, *files)
    # then
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "At most 20 files per request."
    assert _files_under(local_root.parent) == []


def _drain_outbox(world) -> None:
    with schema_context(world.schema):
        while outbox_dispatch_pending():
            pass
    connection.set_schema_to_public()


def test_deleting_a_ticket_deletes_its_and_its_subtasks_files(
    admin_a, make_ticket, world_a, local_root
):
    # given a ticket and its sub-task, each with a file
    parent = make_ticket(summary="parent")
    child = make_ticket(summary="child", type="Sub-task", parent=parent.key)
    assert _upload(admin_a, parent.key, ("a.txt", REPORT)).status_code == 201
    assert _upload(admin_a, child.key, ("b.txt", REPORT)).status_code == 201
    assert len(_files_under(local_root)) == 2
    # when the ticket is deleted and the outbox is drained (what the worker does)
    response = admin_a.delete(f"/api/v1/tickets/{parent.key}")
    _drain_outbox(world_a)
    # then
    assert response.status_code == 204
    assert _files_under(local_root) == []
    with schema_context(world_a.schema):
        assert not Attachment.objects.exists()


def test_deleting_a_project_deletes_the_files_of_its_tickets(
    admin_a, make_ticket, world_a, local_root
):
    # given
    ticket = make_ticket(summary="with file")
    assert _upload(admin_a, ticket.key, ("a.txt", REPORT)).status_code == 201
    # when the project is deleted and the outbox is drained (what the worker does)
    response = admin_a.delete("/api/v1/projects/CORE", confirm="CORE")
    _drain_outbox(world_a)
    # then
    assert response.status_code == 204
    assert _files_under(local_root) == []
