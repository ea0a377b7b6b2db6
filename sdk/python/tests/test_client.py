"""The client never harms its process: bounded calls, reconnects, sd_notify fallback,
no SIGPIPE, thread safety. Real sockets, no mocks."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import krill  # noqa: E402


class Server:
    """A listening krill socket that collects the lines it receives."""

    def __init__(self, path, read=True):
        self.path = path
        self.lines = []
        self.conns = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.read = read
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.read:
                threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        buf = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.lines.append(line)

    def stop(self):
        """Closes the listener and every connection, and removes the socket."""
        self.sock.close()
        for c in self.conns:
            # shutdown first: a reader thread blocked in recv keeps a closed fd's
            # socket alive.
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        os.unlink(self.path)


def wait_for(cond, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


class Env:
    """Sets environment variables for a block."""

    def __init__(self, **kv):
        self.kv = kv

    def __enter__(self):
        self.old = {k: os.environ.get(k) for k in self.kv}
        for k, v in self.kv.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def __exit__(self, *exc):
        for k, v in self.old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Client(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "krill.sock")

    def tearDown(self):
        self.dir.cleanup()

    def test_zero_configuration_and_explicit_arguments_win(self):
        srv = Server(self.path)
        with Env(KRILL_SERVICE="from-env", KRILL_SOCKET=self.path, NOTIFY_SOCKET=None):
            with krill.KrillClient() as c:
                c.heartbeat()
            with krill.KrillClient("explicit") as c:
                c.heartbeat()
        wait_for(lambda: len(srv.lines) == 2, "two lines")
        self.assertEqual([json.loads(x)["service"] for x in srv.lines], ["from-env", "explicit"])
        srv.stop()

    def test_reconnects_when_the_server_comes_back(self):
        srv = Server(self.path)
        with Env(NOTIFY_SOCKET=None):
            c = krill.KrillClient("svc", self.path)
            c.heartbeat()
            wait_for(lambda: len(srv.lines) == 1, "first line")
            srv.stop()
            # Disconnected, nothing to fall back to: a clear, documented error.
            with self.assertRaises(krill.SendError) as e:
                c.heartbeat()
            self.assertIn("a later call reconnects", str(e.exception))
            srv = Server(self.path)
            # The next calls reconnect (within the back-off) and are delivered.
            deadline = time.monotonic() + 5
            while not srv.lines:
                self.assertLess(time.monotonic(), deadline, "never reconnected")
                try:
                    c.heartbeat()
                except krill.SendError:
                    pass
                time.sleep(0.02)
            self.assertEqual(json.loads(srv.lines[0])["service"], "svc")
            c.close()
        srv.stop()

    def test_a_call_never_blocks_longer_than_the_bound(self):
        # A server that accepts but never reads: the socket buffer fills up.
        srv = Server(self.path, read=False)
        with Env(NOTIFY_SOCKET=None):
            c = krill.KrillClient("svc", self.path)
            big = {"k": "x" * 60000}
            worst = 0.0
            raised = False
            for _ in range(200):
                t0 = time.monotonic()
                try:
                    c.heartbeat_with_metadata(big)
                except krill.SendError:
                    raised = True
                worst = max(worst, time.monotonic() - t0)
            self.assertTrue(raised, "the full buffer was reported")
            # SEND_TIMEOUT plus scheduling slack.
            self.assertLess(worst, krill.SEND_TIMEOUT + 0.2)
            c.close()
        srv.stop()

    def test_falls_back_to_the_systemd_watchdog(self):
        notify = os.path.join(self.dir.name, "notify")
        n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        n.bind(notify)
        n.settimeout(2)
        with Env(NOTIFY_SOCKET=notify):
            # No krill socket at all: construction succeeds, calls ping systemd.
            c = krill.KrillClient("svc", os.path.join(self.dir.name, "absent.sock"))
            c.heartbeat()
            self.assertEqual(n.recv(4096), b"WATCHDOG=1")
            c.report_degraded("low battery")
            self.assertEqual(n.recv(4096), b"WATCHDOG=1\nSTATUS=degraded: low battery")
            c.close()
        n.close()

    def test_no_sigpipe_when_the_server_vanishes(self):
        # SIGPIPE's default action kills: a child with it restored must survive.
        srv = Server(self.path)
        code = (
            "import signal, sys, time\n"
            "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
            f"sys.path.insert(0, {os.path.join(os.path.dirname(__file__), '..')!r})\n"
            "import krill\n"
            f"c = krill.KrillClient('svc', {self.path!r})\n"
            "print('connected', flush=True)\n"
            "sys.stdin.readline()\n"
            "for _ in range(3):\n"
            "    try:\n"
            "        c.heartbeat()\n"
            "    except krill.SendError:\n"
            "        pass\n"
            "print('alive', flush=True)\n"
        )
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        p = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.assertEqual(p.stdout.readline(), "connected\n")
        wait_for(lambda: srv.conns, "the connection")
        srv.stop()
        p.stdin.write("\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0, "no death by SIGPIPE (%d)" % p.returncode)
        self.assertEqual(out, "alive\n")
        self.assertNotEqual(p.returncode, -signal.SIGPIPE)

    def test_threads_never_tear_a_line(self):
        srv = Server(self.path)
        with Env(NOTIFY_SOCKET=None):
            c = krill.KrillClient("svc", self.path)
            meta = {"blob": "y" * 3000}

            def beat():
                for _ in range(50):
                    c.heartbeat_with_metadata(meta)

            ts = [threading.Thread(target=beat) for _ in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            wait_for(lambda: len(srv.lines) == 400, "400 lines")
            for line in srv.lines:
                self.assertEqual(json.loads(line)["metadata"], meta)
            c.close()
        srv.stop()

    def test_control_characters_are_escaped(self):
        srv = Server(self.path)
        with Env(NOTIFY_SOCKET=None):
            with krill.KrillClient("svc", self.path) as c:
                c.report_degraded("line\nbreak\x00and\x1b")
        wait_for(lambda: len(srv.lines) == 1, "one line")
        self.assertEqual(json.loads(srv.lines[0])["metadata"]["reason"], "line\nbreak\x00and\x1b")
        srv.stop()

    def test_async_client_reconnects(self):
        srv = Server(self.path)

        async def run():
            c = await krill.AsyncKrillClient.connect("svc", self.path)
            await c.heartbeat()
            return c

        with Env(NOTIFY_SOCKET=None):
            loop = asyncio.new_event_loop()
            c = loop.run_until_complete(run())
            wait_for(lambda: len(srv.lines) == 1, "first line")
            srv.stop()
            srv = Server(self.path)

            async def until_delivered():
                deadline = time.monotonic() + 5
                while not srv.lines:
                    assert time.monotonic() < deadline, "never reconnected"
                    try:
                        await c.heartbeat()
                    except krill.SendError:
                        pass
                    await asyncio.sleep(0.02)
                await c.close()

            loop.run_until_complete(until_delivered())
            loop.close()
        srv.stop()


if __name__ == "__main__":
    unittest.main()
