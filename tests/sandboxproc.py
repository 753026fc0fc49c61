"""The sandbox served from a child process (``pipeline sandbox --port 0``), for tests that call
blocking entry points (``pipeline.api``, the CLI) from the test's own thread."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_SECONDS = 60.0


@contextmanager
def sandbox_process(config: Path, size: str = "small", *extra: str) -> Iterator[Path]:
    """Start the five simulators on free ports; yield once ``config`` is written; stop them."""
    config.unlink(missing_ok=True)
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "sandbox", "--size", size, "--port", "0",
         "--write-config", str(config), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert child.stdout is not None
    seen = ""
    drain = threading.Thread(target=child.stdout.read, daemon=True)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(child.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + START_SECONDS
            while "config written to" not in seen:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    raise RuntimeError("the sandbox did not start in time: " + seen)
                chunk = os.read(child.stdout.fileno(), 65536).decode()  # unbuffered: select stays true
                if not chunk:
                    raise RuntimeError(f"the sandbox exited {child.wait()}: " + seen)
                seen += chunk
        # Keep draining what the sandbox prints afterwards so its pipe never fills.
        drain.start()
        yield config
    finally:
        child.terminate()
        child.wait(timeout=30)
        if drain.is_alive():
            drain.join(timeout=30)
        child.stdout.close()
