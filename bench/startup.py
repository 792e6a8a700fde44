"""Start-up time of the portal: from the exec of `nanoclip serve` to the first 200 on /healthz.

Usage: startup.py BINARY RUNS WORKDIR LOGFILE. Prints one line per run, in milliseconds. The
database must already run (bench/run keeps a portal up for that), so that what is timed is the
portal's own start: resolving the database, migrations check, content and assets, binding.
Each run uses a free port, polls every 5 ms and stops the instance (SIGTERM) before the next.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time

POLL = 0.005
TIMEOUT = 60.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main():
    binary, runs, workdir, logfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    # bench/run stops us with SIGTERM on Ctrl-C: unwind so that `finally` stops the portal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    with open(logfile, "ab") as log:
        for _ in range(runs):
            port = free_port()
            env = dict(os.environ, NANOCLIP_BIND=f"127.0.0.1:{port}")
            env.pop("NANOCLIP_PUBLIC_URL", None)
            process = None
            try:
                start = time.monotonic()
                process = subprocess.Popen([binary, "serve"], cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                while not healthy(port):
                    if process.poll() is not None:
                        sys.exit(f"startup.py: the portal exited with status {process.returncode} before answering 200")
                    if time.monotonic() - start > TIMEOUT:
                        sys.exit(f"startup.py: no 200 on /healthz within {TIMEOUT:.0f} s")
                    time.sleep(POLL)
                elapsed = time.monotonic() - start
                print(f"{elapsed * 1000:.1f}", flush=True)
            finally:
                if process is not None:
                    stop(process)


if __name__ == "__main__":
    main()
