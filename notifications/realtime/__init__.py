"""Real-time push to browsers (Django Channels). `realtime_publish` is the one entry
point the rest of the code uses; see notifications/realtime/publish.py."""

from notifications.realtime.publish import realtime_publish

__all__ = ["realtime_publish"]
