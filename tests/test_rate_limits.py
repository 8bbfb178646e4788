from tests.conftest import Api, token_for


def test_user_rate_limit_answers_429_with_retry_after(settings, admin_a, user_a):
    # given
    settings.RATE_LIMIT_USER_PER_MINUTE = 3
    # when
    statuses = [admin_a.get("/api/v1/audit").status_code for _ in range(3)]
    limited = admin_a.get("/api/v1/audit")
    other_user = user_a.get("/api/v1/auth/me")
    # then
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited["Retry-After"]) in range(1, 61)
    assert other_user.status_code != 429


def test_tenant_rate_limit_counts_every_member_of_that_tenant_only(
    settings, world_a, world_b, admin_a, user_a, admin_b
):
    # given
    settings.RATE_LIMIT_TENANT_PER_MINUTE = 2
    # when
    first = admin_a.get("/api/v1/audit")
    second = user_a.get("/api/v1/audit")
    third = Api(world_a.host, token_for(world_a, world_a.lead)).get("/api/v1/audit")
    other_tenant = admin_b.get("/api/v1/audit")
    # then
    assert [first.status_code, second.status_code] == [200, 403]
    assert third.status_code == 429
    assert other_tenant.status_code == 200


def test_requests_refused_by_the_user_limit_do_not_count_against_the_tenant(
    settings, admin_a, user_a
):
    # given
    settings.RATE_LIMIT_USER_PER_MINUTE = 1
    settings.RATE_LIMIT_TENANT_PER_MINUTE = 2
    # when the admin is refused twice after one request
    statuses = [admin_a.get("/api/v1/audit").status_code for _ in range(3)]
    other_member = user_a.get("/api/v1/auth/me")
    # then the tenant has counted only the admin's first request
    assert statuses == [200, 429, 429]
    assert other_member.status_code == 200
