"""Sends anomaly alerts to the one webhook URL the operator configured (`--alert-webhook`).

The URL is fixed at startup (nothing a request sends can change it): https, or http only to
a loopback address. Alerts wait in a bounded queue (the newest are dropped when it is full:
the detector must never wait); a supervised service POSTs each as JSON with a bounded
timeout and no redirects. A failed delivery is logged (status or error type only) and
dropped: alerts stay readable at `sys/alerts`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from tenantvault._exceptions import ConfigurationError
from tenantvault.observability._anomaly import Alert

__all__ = ["AlertWebhook"]

logger = logging.getLogger("tenantvault.observability.webhook")
TIMEOUT_SECONDS: Final = 5.0
QUEUE_SIZE: Final = 100


def check_url(url: str) -> str:
    """The URL if it is https, or http to a loopback host; `ConfigurationError` otherwise."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http":
        try:
            if ipaddress.ip_address(host).is_loopback:
                return url
        except ValueError:
            if host == "localhost":
                return url
    raise ConfigurationError("the alert webhook must be an https URL (or http to loopback)")


class AlertWebhook:
    """A bounded queue of alerts and the service that delivers them."""

    def __init__(self, url: str, *, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self._url = check_url(url)
        self._timeout = timeout_seconds
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.dropped = 0

    def __repr__(self) -> str:
        return f"AlertWebhook({urlsplit(self._url).hostname!r})"

    def offer(self, alert: Alert) -> None:
        """Queue `alert` for delivery (the detector's listener); drop it if the queue is full."""
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        """Deliver queued alerts until cancelled (a supervised service)."""
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                alert = await self._queue.get()
                try:
                    async with session.post(
                        self._url, json=alert.as_dict(), allow_redirects=False
                    ) as answer:
                        if answer.status >= 300:
                            logger.warning("alert webhook answered %d", answer.status)
                except (aiohttp.ClientError, TimeoutError) as error:
                    logger.warning("alert webhook failed (%s)", type(error).__qualname__)
