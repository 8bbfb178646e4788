"""MFA with an authenticator app (TOTP) and backup codes; the workspace's MFA policy."""

import time
from base64 import b32encode
from datetime import timedelta

from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tenants.utils import schema_context

from accounts.members.models import RefreshToken
from accounts.tokens import jwt_read
from eventlog.models import AuditEntry
from tenants.models import Tenant
from tests.conftest import PASSWORD, Api

LOGIN = "/api/v1/auth/login"
LOGIN_MFA = "/api/v1/auth/mfa"


def totp_device(user) -> TOTPDevice:
    return TOTPDevice.objects.filter(user=user).order_by("-id").first()


def next_code(user) -> str:
    """A real code the user's authenticator shows and the server has not accepted yet:
    the current one, or the next step's when the current one was already used (last_t)."""
    device = totp_device(user)
    now_t = (int(time.time()) - device.t0) // device.step
    t = max(now_t + device.drift, device.last_t + 1)
    code = totp(
        device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=t - now_t
    )
    return f"{code:0{device.digits}d}"


def enrol(api: Api, user) -> list[str]:
    """Turn MFA on for `user` through the API; answers the backup codes."""
    assert api.post("/api/v1/auth/mfa/totp").status_code == 200
    response = api.post("/api/v1/auth/mfa/totp/confirm", {"code": next_code(user)})
    assert response.status_code == 200, response.content
    return response.json()["backup_codes"]


def login(api: Api, email: str):
    return api.post(LOGIN, {"email": email, "password": PASSWORD})


def refresh_token_count(world) -> int:
    with schema_context(world.schema):
        return RefreshToken.objects.count()


def audit(world, action: str) -> list[dict]:
    with schema_context(world.schema):
        return list(AuditEntry.objects.filter(action=action).values("actor_id", "changes"))


def require_mfa(world, policy: str) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(require_mfa=policy)


def throttle_expire(user) -> None:
    """As if django-otp's delay after a wrong code had passed."""
    past = timezone.now() - timedelta(hours=1)
    TOTPDevice.objects.filter(user=user).update(throttling_failure_timestamp=past)
    StaticDevice.objects.filter(user=user).update(throttling_failure_timestamp=past)


# --- enrolment -----------------------------------------------------------------------


def test_status_of_a_member_without_mfa(user_a):
    # when
    response = user_a.get("/api/v1/auth/mfa")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "enabled": False,
        "pending": False,
        "backup_codes_remaining": 0,
        "required": False,
    }


def test_begin_answers_the_secret_and_otpauth_uri_of_an_unconfirmed_device(user_a, world_a):
    # when
    response = user_a.post("/api/v1/auth/mfa/totp")
    # then
    assert response.status_code == 200
    device = TOTPDevice.objects.get(user=world_a.user)
    assert device.confirmed is False
    secret = b32encode(device.bin_key).decode()
    assert len(secret) == 32
    assert response.json() == {
        "secret": secret,
        "otpauth_uri": f"otpauth://totp/Ticketing%3Auser%40alpha.test?secret={secret}"
        "&algorithm=SHA1&digits=6&period=30&issuer=Ticketing",
    }
    assert user_a.get("/api/v1/auth/mfa").json()["pending"] is True


def test_beginning_again_replaces_the_unconfirmed_device(user_a, world_a):
    # given
    first = user_a.post("/api/v1/auth/mfa/totp").json()["secret"]
    # when
    second = user_a.post("/api/v1/auth/mfa/totp").json()["secret"]
    # then
    assert second != first
    [device] = TOTPDevice.objects.filter(user=world_a.user)
    assert b32encode(device.bin_key).decode() == second


def test_confirm_turns_mfa_on_with_single_use_backup_codes_stored_hashed(user_a, world_a):
    # given
    user_a.post("/api/v1/auth/mfa/totp")
    # when
    response = user_a.post("/api/v1/auth/mfa/totp/confirm", {"code": next_code(world_a.user)})
    # then
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["backup_codes"]
    codes = body["backup_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(len(code) == 10 for code in codes)
    assert TOTPDevice.objects.get(user=world_a.user).confirmed is True
    stored = set(
        StaticToken.objects.filter(device__user=world_a.user).values_list("token", flat=True)
    )
    assert len(stored) == 10
    assert not stored & set(codes)
    assert user_a.get("/api/v1/auth/mfa").json() == {
        "enabled": True,
        "pending": False,
        "backup_codes_remaining": 10,
        "required": False,
    }
    assert user_a.get("/api/v1/auth/me").json()["mfa_enabled"] is True
    assert audit(world_a, "auth.mfa_enabled") == [
        {"actor_id": world_a.user.pk, "changes": {"mfa_enabled": [False, True]}}
    ]


def test_confirm_with_a_wrong_code_leaves_mfa_off(user_a, world_a):
    # given
    user_a.post("/api/v1/auth/mfa/totp")
    # when
    response = user_a.post("/api/v1/auth/mfa/totp/confirm", {"code": "000000"})
    malformed = user_a.post("/api/v1/auth/mfa/totp/confirm", {"code": ""})
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "mfa_code_invalid"
    assert malformed.status_code == 422
    assert TOTPDevice.objects.get(user=world_a.user).confirmed is False
    assert not StaticDevice.objects.filter(user=world_a.user).exists()
    assert audit(world_a, "auth.mfa_enabled") == []


def test_confirm_without_begin_and_begin_when_on_are_409(user_a, world_a):
    # when
    unstarted = user_a.post("/api/v1/auth/mfa/totp/confirm", {"code": "123456"})
    enrol(user_a, world_a.user)
    secret_before = totp_device(world_a.user).key
    again = user_a.post("/api/v1/auth/mfa/totp")
    # then
    assert unstarted.status_code == 409
    assert unstarted.json()["error"]["code"] == "mfa_not_started"
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "mfa_already_enabled"
    [device] = TOTPDevice.objects.filter(user=world_a.user)
    assert device.key == secret_before
    assert device.confirmed is True


def test_api_tokens_cannot_manage_mfa(user_a, world_a):
    # given
    raw = user_a.post("/api/v1/auth/tokens", {"name": "script"}).json()["token"]
    # when
    response = Api(world_a.host, raw).post("/api/v1/auth/mfa/totp")
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "api_token_not_allowed"
    assert not TOTPDevice.objects.filter(user=world_a.user).exists()


# --- login with MFA ------------------------------------------------------------------


def test_login_with_mfa_asks_for_a_code_then_issues_the_pair(user_a, anon_a, world_a):
    # given
    enrol(user_a, world_a.user)
    # when
    challenge = login(anon_a, "user@alpha.test")
    # then no token yet
    assert challenge.status_code == 200
    body = challenge.json()
    assert sorted(body) == ["mfa_required", "mfa_token"]
    assert body["mfa_required"] is True
    claims = jwt_read(body["mfa_token"], typ="mfa", tid=world_a.schema)
    assert claims["sub"] == str(world_a.user.pk)
    assert claims["exp"] - claims["iat"] == 300
    assert refresh_token_count(world_a) == 0
    assert Api(world_a.host, body["mfa_token"]).get("/api/v1/auth/me").status_code == 401
    # when the code comes
    done = anon_a.post(LOGIN_MFA, {"mfa_token": body["mfa_token"], "code": next_code(world_a.user)})
    # then
    assert done.status_code == 200, done.content
    assert sorted(done.json()) == ["access", "expires_in", "refresh", "token_type"]
    assert Api(world_a.host, done.json()["access"]).get("/api/v1/auth/me").status_code == 200
    assert refresh_token_count(world_a) == 1
    assert audit(world_a, "auth.login") == [
        {"actor_id": world_a.user.pk, "changes": {"method": [None, "password+totp"]}}
    ]


def test_mfa_token_works_once(user_a, anon_a, world_a):
    # given
    enrol(user_a, world_a.user)
    mfa_token = login(anon_a, "user@alpha.test").json()["mfa_token"]
    first = anon_a.post(LOGIN_MFA, {"mfa_token": mfa_token, "code": next_code(world_a.user)})
    # when
    second = anon_a.post(LOGIN_MFA, {"mfa_token": mfa_token, "code": next_code(world_a.user)})
    # then
    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json()["error"]["code"] == "token_revoked"
    assert refresh_token_count(world_a) == 1


def test_wrong_code_is_401_then_django_otp_throttles_with_429(settings, user_a, anon_a, world_a):
    # given django-otp's delay after one failure is a minute (1 s by default: too short to
    # rely on in a test without sleeping)
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    enrol(user_a, world_a.user)
    mfa_token = login(anon_a, "user@alpha.test").json()["mfa_token"]
    # when
    wrong = anon_a.post(LOGIN_MFA, {"mfa_token": mfa_token, "code": "000000"})
    right_too_soon = anon_a.post(
        LOGIN_MFA, {"mfa_token": mfa_token, "code": next_code(world_a.user)}
    )
    # then
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {
        "code": "mfa_code_invalid",
        "message": "Invalid code.",
        "details": None,
    }
    assert right_too_soon.status_code == 429
    assert right_too_soon.json()["error"]["code"] == "rate_limited"
    assert 58 <= int(right_too_soon["Retry-After"]) <= 60
    assert refresh_token_count(world_a) == 0
    # and once the delay has passed
    throttle_expire(world_a.user)
    later = anon_a.post(LOGIN_MFA, {"mfa_token": mfa_token, "code": next_code(world_a.user)})
    assert later.status_code == 200


def test_our_failure_counter_throttles_even_without_django_otp_delays(
    settings, user_a, anon_a, world_a
):
    # given
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 3
    enrol(user_a, world_a.user)
    mfa_token = login(anon_a, "user@alpha.test").json()["mfa_token"]
    wrong = [
        anon_a.post(LOGIN_MFA, {"mfa_token": mfa_token, "code": f"00000{n}"}).status_code
        for n in range(3)
    ]
    # when
    right = anon_a.post(LOGIN_MFA, {"mfa_token": mfa_token, "code": next_code(world_a.user)})
    # then
    assert wrong == [401, 401, 401]
    assert right.status_code == 429
    assert int(right["Retry-After"]) in range(1, settings.LOGIN_FAILURE_WINDOW_SECONDS + 1)
    assert refresh_token_count(world_a) == 0


def test_a_totp_code_is_accepted_only_once(user_a, anon_a, world_a):
    # given a code that just completed a login
    enrol(user_a, world_a.user)
    code = next_code(world_a.user)
    first_token = login(anon_a, "user@alpha.test").json()["mfa_token"]
    assert anon_a.post(LOGIN_MFA, {"mfa_token": first_token, "code": code}).status_code == 200
    # when it is replayed on a new login
    second_token = login(anon_a, "user@alpha.test").json()["mfa_token"]
    replay = anon_a.post(LOGIN_MFA, {"mfa_token": second_token, "code": code})
    # then
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "mfa_code_invalid"
    assert refresh_token_count(world_a) == 1


def test_a_backup_code_logs_in_once(user_a, anon_a, world_a):
    # given
    codes = enrol(user_a, world_a.user)
    first_token = login(anon_a, "user@alpha.test").json()["mfa_token"]
    # when (typed with a space and in capitals)
    code = f"{codes[3][:5]} {codes[3][5:].upper()}"
    first = anon_a.post(LOGIN_MFA, {"mfa_token": first_token, "code": code})
    second_token = login(anon_a, "user@alpha.test").json()["mfa_token"]
    second = anon_a.post(LOGIN_MFA, {"mfa_token": second_token, "code": codes[3]})
    # then
    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json()["error"]["code"] == "mfa_code_invalid"
    assert user_a.get("/api/v1/auth/mfa").json()["backup_codes_remaining"] == 9
    assert audit(world_a, "auth.login") == [
        {"actor_id": world_a.user.pk, "changes": {"method": [None, "password+backup_code"]}}
    ]


def test_mfa_token_of_tenant_a_is_refused_on_tenant_b(user_a, anon_a, world_a, world_b):
    # given
    enrol(user_a, world_a.user)
    mfa_token = login(anon_a, "user@alpha.test").json()["mfa_token"]
    # when
    response = Api(world_b.host).post(
        LOGIN_MFA, {"mfa_token": mfa_token, "code": next_code(world_a.user)}
    )
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_wrong_tenant"
    assert refresh_token_count(world_b) == 0


def test_mfa_login_refuses_garbage_tokens_and_codes_without_500(anon_a):
    # when
    garbage = anon_a.post(LOGIN_MFA, {"mfa_token": "x.y.z", "code": "123456"})
    missing = anon_a.post(LOGIN_MFA, {"code": "123456"})
    long_code = anon_a.post(LOGIN_MFA, {"mfa_token": "x", "code": "1" * 33})
    # then
    assert garbage.status_code == 401
    assert garbage.json()["error"]["code"] == "token_invalid"
    assert missing.status_code == 422
    assert long_code.status_code == 422


# --- backup codes and turning MFA off ------------------------------------------------


def test_regenerating_backup_codes_needs_an_authenticator_code(user_a, anon_a, world_a):
    # given
    old = enrol(user_a, world_a.user)
    # when
    with_backup_code = user_a.post("/api/v1/auth/mfa/backup-codes", {"code": old[0]})
    throttle_expire(world_a.user)
    with_totp = user_a.post("/api/v1/auth/mfa/backup-codes", {"code": next_code(world_a.user)})
    # then
    assert with_backup_code.status_code == 401
    assert with_totp.status_code == 200
    new = with_totp.json()["backup_codes"]
    assert len(new) == 10
    assert not set(new) & set(old)
    mfa_token = login(anon_a, "user@alpha.test").json()["mfa_token"]
    assert anon_a.post(LOGIN_MFA, {"mfa_token": mfa_token, "code": old[1]}).status_code == 401
    throttle_expire(world_a.user)
    assert anon_a.post(LOGIN_MFA, {"mfa_token": mfa_token, "code": new[1]}).status_code == 200
    assert len(audit(world_a, "auth.mfa_backup_codes_regenerated")) == 1


def test_turning_mfa_off_needs_a_fresh_code(user_a, anon_a, world_a):
    # given
    enrol(user_a, world_a.user)
    # when
    wrong = user_a.delete("/api/v1/auth/mfa", {"code": "000000"})
    # then
    assert wrong.status_code == 401
    assert TOTPDevice.objects.filter(user=world_a.user, confirmed=True).count() == 1
    # when
    throttle_expire(world_a.user)
    right = user_a.delete("/api/v1/auth/mfa", {"code": next_code(world_a.user)})
    # then
    assert right.status_code == 204
    assert not TOTPDevice.objects.filter(user=world_a.user).exists()
    assert not StaticDevice.objects.filter(user=world_a.user).exists()
    assert sorted(login(anon_a, "user@alpha.test").json()) == [
        "access",
        "expires_in",
        "refresh",
        "token_type",
    ]
    assert audit(world_a, "auth.mfa_disabled") == [
        {"actor_id": world_a.user.pk, "changes": {"mfa_enabled": [True, False]}}
    ]


def test_mfa_cannot_be_turned_off_where_the_policy_requires_it(user_a, world_a):
    # given
    enrol(user_a, world_a.user)
    require_mfa(world_a, "all")
    # when
    response = user_a.delete("/api/v1/auth/mfa", {"code": next_code(world_a.user)})
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mfa_required_by_policy"
    assert TOTPDevice.objects.filter(user=world_a.user, confirmed=True).count() == 1
    assert audit(world_a, "auth.mfa_disabled") == []


def test_turning_off_mfa_that_is_off_is_409(user_a):
    # when
    response = user_a.delete("/api/v1/auth/mfa", {"code": "123456"})
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "mfa_not_enabled"


# --- the workspace's policy ----------------------------------------------------------


def test_required_mfa_blocks_tokens_until_enrolment(anon_a, world_a):
    # given
    require_mfa(world_a, "all")
    # when
    response = login(anon_a, "user@alpha.test")
    # then
    assert response.status_code == 200
    body = response.json()
    assert sorted(body) == ["mfa_enrollment_required", "mfa_token"]
    assert body["mfa_enrollment_required"] is True
    assert refresh_token_count(world_a) == 0
    enrolling = Api(world_a.host, body["mfa_token"])
    assert enrolling.get("/api/v1/auth/me").status_code == 401
    assert enrolling.get("/api/v1/auth/tokens").status_code == 401
    # when the person sets up an authenticator with the enrolment token
    assert enrolling.post("/api/v1/auth/mfa/totp").status_code == 200
    confirm = enrolling.post("/api/v1/auth/mfa/totp/confirm", {"code": next_code(world_a.user)})
    # then
    assert confirm.status_code == 200, confirm.content
    result = confirm.json()
    assert sorted(result) == ["access", "backup_codes", "expires_in", "refresh", "token_type"]
    assert len(result["backup_codes"]) == 10
    assert Api(world_a.host, result["access"]).get("/api/v1/auth/me").json()["mfa_enabled"]
    assert refresh_token_count(world_a) == 1
    spent = enrolling.post("/api/v1/auth/mfa/totp")
    assert spent.status_code == 401
    assert spent.json()["error"]["code"] == "token_revoked"
    assert audit(world_a, "auth.login") == [
        {"actor_id": world_a.user.pk, "changes": {"method": [None, "password+totp_enrolment"]}}
    ]
    # and the next login asks for a code
    assert login(anon_a, "user@alpha.test").json()["mfa_required"] is True


def test_enrolment_token_with_a_wrong_code_issues_nothing(anon_a, world_a):
    # given
    require_mfa(world_a, "all")
    enrolling = Api(world_a.host, login(anon_a, "user@alpha.test").json()["mfa_token"])
    enrolling.post("/api/v1/auth/mfa/totp")
    # when
    response = enrolling.post("/api/v1/auth/mfa/totp/confirm", {"code": "000000"})
    # then
    assert response.status_code == 401
    assert refresh_token_count(world_a) == 0
    assert TOTPDevice.objects.get(user=world_a.user).confirmed is False


def test_admins_policy_applies_to_admins_only(anon_a, world_a):
    # given
    require_mfa(world_a, "admins")
    # when
    admin = login(anon_a, "admin@alpha.test").json()
    lead = login(anon_a, "lead@alpha.test").json()
    # then
    assert admin["mfa_enrollment_required"] is True
    assert "access" in lead
    assert refresh_token_count(world_a) == 1


def test_enrolment_token_of_tenant_a_is_refused_on_tenant_b(anon_a, world_a, world_b):
    # given
    require_mfa(world_a, "all")
    token = login(anon_a, "user@alpha.test").json()["mfa_token"]
    # when
    response = Api(world_b.host, token).post("/api/v1/auth/mfa/totp")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_wrong_tenant"
    assert not TOTPDevice.objects.filter(user=world_a.user).exists()
