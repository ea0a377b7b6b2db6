"""Heartbeat call latency of the Python SDK, and of a raw sendall of the same bytes
(the floor), on a connected socket: `python3 bench.py SOCKET N`. Prints one line per
client: `name p50_ns p99_ns`. Run by `cargo bench -p krill-e2e --bench sdk`."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import krill  # noqa: E402


def measure(call, n):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return samples[n // 2], samples[n * 99 // 100]


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    os.environ.pop("NOTIFY_SOCKET", None)
    c = krill.KrillClient("bench", path)
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(path)
    line = krill._encode("bench", "healthy", {})
    for name, call in [("python", c.heartbeat), ("python-floor", lambda: raw.sendall(line))]:
        measure(call, n // 10)  # warm up
        p50, p99 = measure(call, n)
        print(name, p50, p99, flush=True)


main()
