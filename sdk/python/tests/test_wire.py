"""The exact bytes the upstream SDKs send (design.md), checked against a real socket."""
import os
import socket
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from krill import KrillClient, KrillError  # noqa: E402


class Wire(unittest.TestCase):
    def test_bytes(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "s.sock")
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(path)
            srv.listen(1)
            got = []

            def accept():
                conn, _ = srv.accept()
                buf = b""
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                got.append(buf)

            t = threading.Thread(target=accept)
            t.start()
            with KrillClient("S", socket_path=path) as c:
                c.heartbeat()
                c.report_degraded("low battery")
                c.heartbeat_with_metadata({"fps": 30})
                c.report_healthy()
            t.join()
            self.assertEqual(
                got[0],
                b'{"type":"heartbeat","service":"S","status":"healthy","metadata":{}}\n'
                b'{"type":"heartbeat","service":"S","status":"degraded","metadata":{"reason":"low battery"}}\n'
                b'{"type":"heartbeat","service":"S","status":"healthy","metadata":{"fps":"30"}}\n'
                b'{"type":"heartbeat","service":"S","status":"healthy","metadata":{}}\n',
            )

    def test_env_defaults_and_errors(self):
        os.environ["KRILL_SERVICE"] = "from-env"
        os.environ["KRILL_SOCKET"] = "/nonexistent/krill.sock"
        with self.assertRaises(KrillError) as e:
            KrillClient()
        self.assertIn("/nonexistent/krill.sock", str(e.exception))
        del os.environ["KRILL_SERVICE"]
        with self.assertRaises(KrillError):
            KrillClient()


if __name__ == "__main__":
    unittest.main()
