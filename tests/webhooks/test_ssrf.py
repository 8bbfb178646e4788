"""SSRF: webhooks go only to public addresses, checked on save and again at send
time on the address actually connected to."""

import ipaddress

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from notifications.webhooks.delivery import webhook_delivery_attempt
from notifications.webhooks.fanout import RETRY_WINDOW
from notifications.webhooks.models import WebhookDelivery, WebhookEndpoint
from notifications.webhooks.ssrf import address_refusal, webhook_target_resolve
from tests.webhooks.conftest import webhook_make


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://127.9.9.9:8080/hook", "loopback"),
        ("http://localhost:8000/hook", "loopback"),  # a name resolving to loopback
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped IPv6
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::]/hook", "unspecified"),
        ("http://10.0.0.5/hook", "private"),
        ("http://172.16.3.4/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("http://[fd00::1]/hook", "private"),
        ("http://[::ffff:10.1.1.1]/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
        ("http://[fe80::1]/hook", "link-local"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://[ff02::1]/hook", "multicast"),
        ("http://240.0.0.1/hook", "reserved"),
        ("http://100.64.0.1/hook", "non-public"),  # carrier-grade NAT
        ("http://2130706433/hook", "loopback"),  # 127.0.0.1 as one number
    ],
)
def test_non_public_addresses_are_refused_on_save(admin_a, world_a, url, reason):
    # when
    response = admin_a.post("/api/v1/webhooks", {"url": url})
    # then
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "webhook_url_forbidden"
    assert error["message"].endswith(f"it resolves to a {reason} address.")
    with schema_context(world_a.schema):
        assert WebhookEndpoint.objects.count() == 0


def test_loopback_is_allowed_only_with_the_setting(admin_a, loopback_allowed):
    allowed = admin_a.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook"})
    still_private = admin_a.post("/api/v1/webhooks", {"url": "http://10.0.0.1/hook"})
    assert allowed.status_code == 201
    assert still_private.status_code == 422


def test_embedded_ipv4_in_ipv6_is_unwrapped():
    assert address_refusal(ipaddress.ip_address("2002:0a00:0001::1")) == "private"  # 6to4
    assert address_refusal(ipaddress.ip_address("2001:0:4136:e378:8000:63bf:f5ff:fffe")) == (
        "private"  # Teredo carrying 10.0.0.1
    )
    assert address_refusal(ipaddress.ip_address("93.184.215.14")) is None
    assert address_refusal(ipaddress.ip_address("2606:4700::1111")) is None


def test_the_target_pins_the_resolved_address_and_keeps_the_host(loopback_allowed):
    target = webhook_target_resolve("http://localhost:8123/a/b?c=d")
    assert (target.host, target.port, target.host_header, target.path) == (
        "localhost",
        8123,
        "localhost:8123",
        "/a/b?c=d",
    )
    assert target.ip in ("127.0.0.1", "::1")


def test_a_url_that_turned_private_is_refused_at_send_time(world_a, receiver, settings):
    # given a webhook saved while loopback was allowed (think: DNS now answers 127.0.0.1)
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    endpoint = webhook_make(world_a, f"http://localhost:{receiver.port}/hook")
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    with schema_context(world_a.schema):
        from django.utils import timezone

        now = timezone.now()
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id="6f1c1a3e-8a3b-4d59-9df4-0b1f9b0e2a11",
            event_type="ping",
            payload={"id": "6f1c1a3e-8a3b-4d59-9df4-0b1f9b0e2a11", "type": "ping"},
            next_attempt_at=now,
            retry_until=now + RETRY_WINDOW,
        )
        # when
        outcome = webhook_delivery_attempt(delivery_id=delivery.pk)
        # then
        delivery.refresh_from_db()
    connection.set_schema_to_public()
    assert outcome == "failed"
    assert delivery.last_error == (
        "refused: Webhooks cannot be sent to localhost: it resolves to a loopback address."
    )
    assert delivery.last_status_code is None
    assert receiver.requests == []
