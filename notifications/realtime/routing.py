"""WebSocket routes (served by saas.asgi)."""

from django.urls import path, re_path

from notifications.realtime.consumers import LiveConsumer, NotFoundConsumer

LIVE_PATH = "ws/live"

websocket_urlpatterns = [
    path(LIVE_PATH, LiveConsumer.as_asgi()),
    re_path(r"", NotFoundConsumer.as_asgi()),
]
