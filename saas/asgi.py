"""ASGI entry point: Django over HTTP and the live WebSocket at `/ws/live`.

The API is served faster by the WSGI server (see DESIGN.md); this application runs as
the `realtime` process role (`make run` starts it on PORT+1), and an ingress sends a
workspace host's `/ws/` paths to it. It answers HTTP too, so one process can serve
everything where throughput matters less.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")
django_application = get_asgi_application()  # sets Django up before the imports below

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from notifications.realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
