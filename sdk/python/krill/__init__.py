"""Krill heartbeat client, wire-compatible with the upstream Krill Python SDK.

    from krill import KrillClient

    with KrillClient("my-service") as client:   # or KrillClient() under krill
        while True:
            client.heartbeat()
            time.sleep(1)

Each message is one compact JSON object and a newline, keys in the order type,
service, status, metadata; the client never reads from the socket. Under krill the
service name and socket come from KRILL_SERVICE and KRILL_SOCKET, which krill sets
for every service; elsewhere the socket defaults to /tmp/krill.sock (upstream's).
"""

import asyncio
import json
import os
import socket

__all__ = ["KrillClient", "AsyncKrillClient", "KrillError", "DEFAULT_SOCKET"]

DEFAULT_SOCKET = "/tmp/krill.sock"


class KrillError(Exception):
    """The client cannot reach the supervisor or was misused."""


def _socket_path(path):
    return path or os.environ.get("KRILL_SOCKET") or DEFAULT_SOCKET


def _service_name(service):
    name = service or os.environ.get("KRILL_SERVICE")
    if not name:
        raise KrillError("no service name given and KRILL_SERVICE is not set")
    return name


def _encode(service, status, metadata):
    msg = {"type": "heartbeat", "service": service, "status": status, "metadata": metadata}
    return (json.dumps(msg, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


class KrillClient:
    """Blocking client. Connects on construction."""

    def __init__(self, service=None, socket_path=None):
        self.service = _service_name(service)
        self.socket_path = _socket_path(socket_path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(self.socket_path)
        except OSError as e:
            self._sock.close()
            raise KrillError(f"cannot connect to {self.socket_path}: {e}") from e

    def _send(self, status, metadata):
        try:
            self._sock.sendall(_encode(self.service, status, metadata))
        except OSError as e:
            raise KrillError(f"cannot send to {self.socket_path}: {e}") from e

    def heartbeat(self):
        """Reports the service healthy."""
        self._send("healthy", {})

    def report_healthy(self):
        """Same as heartbeat()."""
        self._send("healthy", {})

    def report_degraded(self, reason):
        """Reports the service alive but degraded, with a reason shown in status."""
        self._send("degraded", {"reason": str(reason)})

    def heartbeat_with_metadata(self, metadata):
        """A healthy heartbeat carrying a string-to-string map."""
        self._send("healthy", {str(k): str(v) for k, v in metadata.items()})

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class AsyncKrillClient:
    """asyncio client: `client = await AsyncKrillClient.connect("svc")`."""

    def __init__(self, service, socket_path, writer):
        self.service = service
        self.socket_path = socket_path
        self._writer = writer

    @classmethod
    async def connect(cls, service=None, socket_path=None):
        service = _service_name(service)
        path = _socket_path(socket_path)
        try:
            _, writer = await asyncio.open_unix_connection(path)
        except OSError as e:
            raise KrillError(f"cannot connect to {path}: {e}") from e
        return cls(service, path, writer)

    async def _send(self, status, metadata):
        self._writer.write(_encode(self.service, status, metadata))
        await self._writer.drain()

    async def heartbeat(self):
        await self._send("healthy", {})

    async def report_healthy(self):
        await self._send("healthy", {})

    async def report_degraded(self, reason):
        await self._send("degraded", {"reason": str(reason)})

    async def heartbeat_with_metadata(self, metadata):
        await self._send("healthy", {str(k): str(v) for k, v in metadata.items()})

    async def close(self):
        self._writer.close()
        await self._writer.wait_closed()
