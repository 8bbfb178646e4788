from django.db import connection
from django_tenants.utils import schema_context

from eventlog.dispatch import outbox_dispatch_pending
from eventlog.models import OutboxEvent
from eventlog.outbox import _consumers, outbox_consumer, outbox_emit
from eventlog.tasks import outbox_dispatch, outbox_sweep_all


def _registered(kind, func):
    outbox_consumer(kind)(func)
    return func


def test_emit_writes_the_event_and_enqueues_dispatch_only_after_commit(
    world_a, django_capture_on_commit_callbacks
):
    # given a consumer recording what it sees
    seen = []
    consumer = _registered(
        "thing.created",
        lambda event: seen.append((connection.schema_name, event.kind, event.payload)),
    )
    try:
        with schema_context(world_a.schema):
            # when
            with django_capture_on_commit_callbacks(execute=False) as callbacks:
                event = outbox_emit(
                    "thing.created",
                    aggregate_type="thing",
                    aggregate_id=7,
                    actor=world_a.admin,
                    payload={"n": 1},
                )
            # then nothing was dispatched before commit
            assert seen == []
            assert OutboxEvent.objects.get(pk=event.pk).dispatched_at is None
            # when the transaction commits (eager Celery runs the task now)
            for callback in callbacks:
                callback()
            # then
            assert seen == [(world_a.schema, "thing.created", {"n": 1})]
            stored = OutboxEvent.objects.get(pk=event.pk)
            assert stored.dispatched_at is not None
            assert stored.attempts == 1
            assert stored.actor_id == world_a.admin.pk
    finally:
        _consumers["thing.created"].remove(consumer)


def test_failing_consumer_leaves_event_pending_with_error_and_later_events_flow(world_a):
    # given
    calls = []

    def flaky(event):
        calls.append(event.payload["n"])
        if event.payload["n"] == 1:
            raise ValueError("receiver down")

    _registered("thing.flaky", flaky)
    try:
        with schema_context(world_a.schema):
            first = outbox_emit(
                "thing.flaky", aggregate_type="thing", aggregate_id=1, payload={"n": 1}
            )
            second = outbox_emit(
                "thing.flaky", aggregate_type="thing", aggregate_id=2, payload={"n": 2}
            )
            # when
            dispatched = outbox_dispatch_pending()
            # then
            assert dispatched == 1
            assert calls == [1, 2]
            first.refresh_from_db()
            second.refresh_from_db()
            assert first.dispatched_at is None
            assert first.attempts == 1
            assert first.last_error == "ValueError('receiver down')"
            assert second.dispatched_at is not None
    finally:
        _consumers["thing.flaky"].remove(flaky)


def test_dispatch_runs_in_the_schema_it_is_given_and_never_touches_another(world_a, world_b):
    # given one pending event in each tenant
    with schema_context(world_a.schema):
        a_event = outbox_emit("thing.x", aggregate_type="thing", aggregate_id=1)
    with schema_context(world_b.schema):
        b_event = outbox_emit("thing.x", aggregate_type="thing", aggregate_id=1)
    # when
    count = outbox_dispatch.apply(args=[world_a.schema]).get()
    # then
    assert count >= 1
    with schema_context(world_a.schema):
        assert OutboxEvent.objects.get(pk=a_event.pk).dispatched_at is not None
    with schema_context(world_b.schema):
        assert OutboxEvent.objects.get(pk=b_event.pk).dispatched_at is None


def test_sweep_fans_out_one_dispatch_per_active_tenant(world_a, world_b):
    # given
    with schema_context(world_b.schema):
        pending = outbox_emit("thing.y", aggregate_type="thing", aggregate_id=3)
    # when
    fanned_out = outbox_sweep_all.apply().get()
    # then
    assert fanned_out >= 2
    with schema_context(world_b.schema):
        assert OutboxEvent.objects.get(pk=pending.pk).dispatched_at is not None


def test_one_dispatch_is_scheduled_per_transaction_however_many_events(
    world_a, django_capture_on_commit_callbacks
):
    with schema_context(world_a.schema):
        # when
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            for n in range(5):
                outbox_emit("thing.many", aggregate_type="thing", aggregate_id=n)
        # then
        assert len(callbacks) == 1
        assert OutboxEvent.objects.filter(kind="thing.many").count() == 5
