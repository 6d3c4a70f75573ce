"""Headless Chromium, driven through the DevTools protocol over a pipe (no WebDriver, no extra package).

Used by ``percept check-web`` (and its tests and benchmark) to open the exported web page in a real
browser, read what the page wrote into its elements and take screenshots. Chromium is started with
``--remote-debugging-pipe``: it reads JSON commands, each ended by a NUL byte, from file descriptor 3
and writes the answers and events to file descriptor 4.

Why not Selenium with Debian's ``chromium-driver`` (tried in issue 29, Selenium 4.51, Chromium and
chromedriver 150): it does all of this (headless, the fake-camera switches, console messages through
``goog:loggingPrefs``, awaited promises, screenshots, time-outs; the isolation headers are the server's)
in ~65 lines of code instead of ~155, and a page opens as fast (start, open, self-test, screenshot,
close: median of 5 1.44-1.65 s against 1.62-1.68 s here, within the noise of a shared 2-core AMD EPYC).
We keep the pipe because the rest is worse: a second binary that must match the browser's version
exactly (Debian's pair does; a ``PERCEPT_CHROMIUM`` Chrome would need its own, which Selenium Manager
goes online to fetch, sending usage statistics); an HTTP connection to chromedriver on localhost, so it
fails where there is no loopback interface (a sandbox's empty network namespace), where the pipe works;
uncaught exceptions reach the log without their stack; and selenium (35 MB, with Selenium Manager
binaries for four platforms) plus a dozen packages (trio, urllib3, websocket-client, ...) in every
install, for one check.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from percept.errors import PerceptError

__all__ = ["Browser", "find_chromium"]


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable, or None: ``$PERCEPT_CHROMIUM`` or the usual names."""
    env = os.environ.get("PERCEPT_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium process with one page.

    Args:
        args: extra Chromium switches (e.g. the fake camera's).
        executable: the browser (default :func:`find_chromium`).
    """

    def __init__(self, args: list[str] | tuple[str, ...] = (), executable: str | None = None) -> None:
        exe = executable or find_chromium()
        if exe is None:
            raise PerceptError("no Chromium here (apt-get install chromium, or set PERCEPT_CHROMIUM)")
        self._profile = tempfile.mkdtemp(prefix="percept-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def _fds() -> None:  # in the child: the pipe ends become fds 3 and 4 (inheritable: dup2 to another number)
            import fcntl

            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)  # above 3 and 4, whatever the pipes' own numbers are
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        cmd = [exe, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu-sandbox",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
               f"--user-data-dir={self._profile}", "--window-size=1280,1000", *args, "about:blank"]
        self._log = open(os.path.join(self._profile, "chromium.log"), "wb")  # noqa: SIM115 - closed in close()
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
                                         preexec_fn=_fds, close_fds=False)
        except OSError as exc:
            for fd in (to_child_r, self._to_child, self._from_child, from_child_w):
                os.close(fd)
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)
            raise PerceptError(f"cannot start {exe}: {exc.strerror or exc}") from None
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self._session: str | None = None
        self.console: list[str] = []
        """Console messages and uncaught exceptions of the page, in order."""

    # ------------------------------------------------------------------------------------ protocol

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._id += 1
        msg: dict = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        except OSError:
            raise PerceptError(f"Chromium quit: {self._last_log_line()}") from None
        return self._id

    def _last_log_line(self) -> str:
        try:
            lines = Path(self._log.name).read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return lines[-1] if lines else "no message"

    def _read(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise PerceptError(f"Chromium quit: {self._last_log_line()}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        msg = json.loads(raw)
        self._note(msg)
        return msg

    def _note(self, msg: dict) -> None:
        method = msg.get("method")
        if method == "Runtime.consoleAPICalled":
            args = msg["params"].get("args", [])
            self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        elif method == "Runtime.exceptionThrown":
            d = msg["params"].get("exceptionDetails", {})
            self.console.append("exception: " + str(d.get("exception", {}).get("description", d.get("text", ""))))

    def call(self, method: str, params: dict | None = None, timeout: float = 60.0, page: bool = True) -> dict:
        """Send one command (to the page's session unless ``page=False``) and return its result."""
        mid = self._send(method, params, self._session if page else None)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise PerceptError(f"Chromium did not answer {method} within {timeout:g} s")
            if msg.get("id") == mid:
                if "error" in msg:
                    raise PerceptError(f"Chromium: {method}: {msg['error'].get('message')}")
                return msg.get("result", {})

    # ------------------------------------------------------------------------------------ the page

    def open(self, url: str, timeout: float = 60.0) -> None:
        """Open ``url`` in a new page (the one every later call talks to)."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, timeout, page=False)["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True}, timeout,
                                  page=False)["sessionId"]
        self.call("Runtime.enable", timeout=timeout)
        self.call("Page.enable", timeout=timeout)
        self.call("Page.navigate", {"url": url}, timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 60.0):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                      timeout)
        if "exceptionDetails" in r:
            raise PerceptError(f"the page threw: {r['exceptionDetails'].get('text', '')}")
        return r.get("result", {}).get("value")

    def text(self, element_id: str) -> str:
        """The text of the element with id ``element_id`` ('' when it is empty or missing)."""
        value = self.evaluate(f"(document.getElementById({json.dumps(element_id)}) || {{}}).textContent || ''")
        return str(value or "")

    def wait_for_text(self, element_id: str, timeout: float) -> str:
        """Poll until the element has text; returns it ('' on time-out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.text(element_id).strip()
            if got:
                return got
            self._read(0.25)  # drain events (console messages) while waiting
        return ""

    def screenshot(self, path: str | os.PathLike) -> Path:
        """A PNG of the page as it is now."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self._send("Browser.close")
                    self.proc.wait(timeout=10)
                except (OSError, PerceptError, subprocess.TimeoutExpired):
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
