"""Krill heartbeat client, wire-compatible with the upstream Krill Python SDK.

    from krill import KrillClient

    with KrillClient() as client:          # KRILL_SERVICE / KRILL_SOCKET, set by krill
        while True:
            client.heartbeat()
            time.sleep(1)

Each message is one compact JSON object and a newline, keys in the order type,
service, status, metadata; the client never reads from the socket. With no
arguments the service name comes from KRILL_SERVICE and the socket from KRILL_SOCKET
(krill sets both for every service); explicit arguments win, and the socket
otherwise defaults to /tmp/krill.sock (upstream's).

A robot process must never be harmed by its heartbeat, so:

* A call blocks for at most SEND_TIMEOUT (0.1 s), connecting included.
* When the connection breaks, the next call reconnects; failed attempts back off
  from 50 ms to at most 2 s, and calls in between do not try.
* While disconnected, a call falls back to systemd's own watchdog when NOTIFY_SOCKET
  is set (``WATCHDOG=1``; ``STATUS=`` carries a degraded reason), so a service also
  runs under plain systemd with ``WatchdogSec=``. Without NOTIFY_SOCKET it raises
  SendError (a KrillError); the process goes on, and a later call reconnects.
* No SIGPIPE (MSG_NOSIGNAL); partial writes are completed or the connection is
  dropped whole, so a line is never torn; KrillClient is thread-safe.
"""

import asyncio
import json
import os
import socket
import threading
import time

__all__ = [
    "KrillClient",
    "AsyncKrillClient",
    "KrillError",
    "ConnectionError",
    "SendError",
    "DEFAULT_SOCKET",
    "DEFAULT_SOCKET_PATH",
    "SEND_TIMEOUT",
]

DEFAULT_SOCKET = "/tmp/krill.sock"
#: Upstream's name for DEFAULT_SOCKET.
DEFAULT_SOCKET_PATH = DEFAULT_SOCKET
#: The longest a call blocks, in seconds (connecting and sending together).
SEND_TIMEOUT = 0.1
#: Reconnect back-off after a failed attempt, in seconds: doubles from MIN to MAX.
BACKOFF_MIN = 0.05
BACKOFF_MAX = 2.0


class KrillError(Exception):
    """Base class of the SDK's errors."""


class ConnectionError(KrillError):  # noqa: A001 - upstream's name
    """The client could not connect to krill (raised by constructors only)."""


class SendError(KrillError):
    """A message could not be delivered: the client is closed, or disconnected with
    no systemd watchdog to fall back to. The next call tries again."""


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


def _sd_notify(status, metadata):
    """Pings systemd's watchdog directly; False when not run by systemd with one."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]
    state = "WATCHDOG=1"
    if status == "degraded":
        reason = metadata.get("reason", "").replace("\n", " ")
        state += "\nSTATUS=degraded: " + reason
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.settimeout(SEND_TIMEOUT)
            s.sendto(state.encode(), path)
        return True
    except OSError:
        return False


def _fall_back(path, status, metadata, error):
    """No way through krill: ping systemd's watchdog, else raise SendError."""
    if not _sd_notify(status, metadata):
        raise SendError(
            f"Failed to send heartbeat to krill at {path} ({error}); "
            "a later call reconnects"
        )


class _Backoff:
    """When the next connection attempt may be made."""

    def __init__(self):
        self.delay = BACKOFF_MIN
        self.retry_at = 0.0

    def ready(self):
        return time.monotonic() >= self.retry_at

    def failed(self):
        self.retry_at = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, BACKOFF_MAX)

    def succeeded(self):
        self.delay = BACKOFF_MIN
        self.retry_at = 0.0


class KrillClient:
    """Blocking, thread-safe client. Connects on construction: raises
    ConnectionError if it cannot, unless systemd's watchdog (NOTIFY_SOCKET) is
    there to fall back to."""

    def __init__(self, service_name=None, socket_path=None):
        self.service = _service_name(service_name)
        self.socket_path = _socket_path(socket_path)
        # The common message, encoded once (the encoding is most of a call's cost).
        self._healthy = _encode(self.service, "healthy", {})
        self._lock = threading.Lock()
        self._sock = None
        self._closed = False
        self._backoff = _Backoff()
        try:
            self._connect(time.monotonic() + SEND_TIMEOUT)
        except OSError as e:
            if not os.environ.get("NOTIFY_SOCKET"):
                raise ConnectionError(
                    f"Failed to connect to krill at {self.socket_path}: {e}"
                ) from e
            self._backoff.failed()

    def _connect(self, deadline):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(max(deadline - time.monotonic(), 0.001))
            s.connect(self.socket_path)
        except BaseException:
            s.close()
            raise
        self._sock = s
        self._backoff.succeeded()

    def _drop(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _write(self, data, deadline):
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("send timed out")
            self._sock.settimeout(left)
            n = self._sock.send(view, socket.MSG_NOSIGNAL)
            view = view[n:]

    def _send(self, status, metadata):
        if status == "healthy" and not metadata:
            data = self._healthy
        else:
            data = _encode(self.service, status, metadata)
        with self._lock:
            if self._closed:
                raise SendError("Not connected: the client is closed")
            deadline = time.monotonic() + SEND_TIMEOUT
            error = "not connected"
            if self._sock is None and self._backoff.ready():
                try:
                    self._connect(deadline)
                except OSError as e:
                    self._backoff.failed()
                    error = f"cannot connect: {e}"
            if self._sock is not None:
                try:
                    self._write(data, deadline)
                    return
                except OSError as e:
                    # A torn line must not start the next connection: drop it whole.
                    self._drop()
                    self._backoff.failed()
                    error = f"cannot send: {e}"
            _fall_back(self.socket_path, status, metadata, error)

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
        """Closes the connection; later calls raise SendError."""
        with self._lock:
            self._closed = True
            self._drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()


class AsyncKrillClient:
    """asyncio client: ``client = await AsyncKrillClient.connect()``. The same
    guarantees as KrillClient, for one event loop."""

    def __init__(self, service, socket_path, writer):
        self.service = service
        self.socket_path = socket_path
        self._writer = writer
        self._closed = False
        self._backoff = _Backoff()

    @classmethod
    async def connect(cls, service_name=None, socket_path=None):
        service = _service_name(service_name)
        path = _socket_path(socket_path)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(path), SEND_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError) as e:
            if not os.environ.get("NOTIFY_SOCKET"):
                raise ConnectionError(f"Failed to connect to krill at {path}: {e}") from e
            client = cls(service, path, None)
            client._backoff.failed()
            return client
        return cls(service, path, writer)

    async def _send(self, status, metadata):
        if self._closed:
            raise SendError("Not connected: the client is closed")
        data = _encode(self.service, status, metadata)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SEND_TIMEOUT
        error = "not connected"
        if self._writer is None and self._backoff.ready():
            try:
                _, self._writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(self.socket_path), SEND_TIMEOUT
                )
                self._backoff.succeeded()
            except (OSError, asyncio.TimeoutError) as e:
                self._backoff.failed()
                error = f"cannot connect: {e}"
        if self._writer is not None:
            try:
                if self._writer.is_closing():
                    raise OSError("connection closed")
                self._writer.write(data)
                # Usually the kernel took it all and there is nothing to wait for
                # (no task, no yield to the loop); otherwise wait, within the bound.
                if self._writer.transport.get_write_buffer_size() > 0:
                    await asyncio.wait_for(
                        self._writer.drain(), max(deadline - loop.time(), 0.001)
                    )
                return
            except (OSError, asyncio.TimeoutError) as e:
                self._writer.close()
                self._writer = None
                self._backoff.failed()
                error = f"cannot send: {e!r}"
        _fall_back(self.socket_path, status, metadata, error)

    async def heartbeat(self):
        await self._send("healthy", {})

    async def report_healthy(self):
        await self._send("healthy", {})

    async def report_degraded(self, reason):
        await self._send("degraded", {"reason": str(reason)})

    async def heartbeat_with_metadata(self, metadata):
        await self._send("healthy", {str(k): str(v) for k, v in metadata.items()})

    async def close(self):
        self._closed = True
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
            self._writer = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
        return False
