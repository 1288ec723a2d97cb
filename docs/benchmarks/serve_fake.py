"""The fake server in a process of its own: the child's command loop and the parent's handle.

The benchmark (``stream.py``) starts this script as a child process through
:class:`ServerProcess`, so that the server's work (JSON encoding, HTTP) never shows
in the client's CPU time or memory. Run as a script, it serves a
:class:`~voucherify_async.testing.FakeVoucherify` on a free port of ``127.0.0.1``,
prints ``ready <base_url>``, then reads one command a line from stdin and answers
each with one line:

- ``actions COUNT``: serve the ``COUNT`` newest of the actions ``generate_actions``
  makes (seed 0); answers ``ok COUNT``. The largest list asked for so far is kept,
  so asking for fewer costs no new generation.
- ``load PATH``: serve the actions of the JSON file ``PATH`` (a list of action
  objects, newest first); answers ``ok COUNT``.
- ``latency SECONDS``: set the fake's ``latency``; answers ``ok SECONDS``.
- ``cpu``: answers ``ok SECONDS``, the CPU time this process has used so far
  (to tell the server's share of a run from the client's).
- ``quit``, or the end of stdin (the parent ended, or died): stop serving, exit.

A bad command answers ``error <message>`` and leaves the server as it was.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

__all__ = ["ServerProcess", "main", "serve"]

_SEED = 0


def _answer(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def serve(commands: TextIO, out: TextIO) -> None:
    """Serve until ``quit`` or the end of ``commands``, answering on ``out``."""
    from voucherify_async.testing import FakeVoucherify, generate_actions  # the child only

    generated: list[dict[str, Any]] = []
    fake = FakeVoucherify()
    with fake.run_in_thread():
        _answer(out, f"ready {fake.base_url}")
        for line in commands:
            verb, _, argument = line.strip().partition(" ")
            try:
                if verb == "quit":
                    break
                if verb == "actions":
                    count = int(argument)
                    if count > len(generated):
                        generated = generate_actions(count, seed=_SEED)
                    fake.set_actions(generated[:count])
                    _answer(out, f"ok {count}")
                elif verb == "load":
                    loaded = json.loads(Path(argument).read_text(encoding="utf-8"))
                    fake.set_actions(loaded)
                    _answer(out, f"ok {len(loaded)}")
                elif verb == "latency":
                    fake.latency = float(argument)
                    _answer(out, f"ok {fake.latency}")
                elif verb == "cpu":
                    _answer(out, f"ok {time.process_time()!r}")
                else:
                    _answer(out, f"error unknown command {verb!r}")
            except (ValueError, OSError) as exc:
                _answer(out, f"error {exc}")


class ServerProcess:
    """This script in a child process (same interpreter, same warning options), fed over stdin.

    Usage::

        with ServerProcess() as server:
            server.command("actions 50000")
            ...  # requests to server.base_url

    The child stops on ``quit`` or when its stdin closes, so it also stops if this
    process dies. Leaving the ``with`` block (or :meth:`close`) always ends it:
    ``quit``, then terminate, then kill, if it does not exit in time.

    Raises:
        RuntimeError: the child did not start, or did not answer a command in
            ``timeout`` seconds, or refused it.
    """

    def __init__(self, *, timeout: float = 120.0) -> None:
        self.timeout = timeout
        warnings = [f"-W{option}" for option in sys.warnoptions]
        self._process = subprocess.Popen(  # noqa: S603  # this script, this interpreter
            [sys.executable, *warnings, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.pid = self._process.pid
        """The child's process id."""
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="serve_fake stdout", daemon=True)
        self._reader.start()
        try:
            ready = self._reply()
            if not ready.startswith("ready "):
                raise RuntimeError(f"the fake server did not start: {ready!r}")
        except BaseException:
            self.close()
            raise
        self.base_url = ready.removeprefix("ready ")
        """``http://127.0.0.1:PORT``."""

    def _read(self) -> None:
        assert self._process.stdout is not None  # stdout=PIPE
        for line in self._process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put("")  # end of output: the child exited

    def _reply(self) -> str:
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            raise RuntimeError(f"the fake server did not answer in {self.timeout} s") from None
        if not line:
            raise RuntimeError(f"the fake server exited (code {self._process.poll()})")
        return line

    def command(self, line: str) -> str:
        """Send one command and return its answer after ``ok`` (``"50000"`` for ``actions 50000``).

        Raises:
            RuntimeError: the server answered an error, or not at all.
        """
        stdin = self._process.stdin
        assert stdin is not None  # stdin=PIPE
        try:
            stdin.write(line + "\n")
            stdin.flush()
        except (BrokenPipeError, ValueError) as exc:  # ValueError: closed by close()
            raise RuntimeError(f"the fake server is gone: {exc}") from exc
        answer = self._reply()
        if not answer.startswith("ok"):
            raise RuntimeError(f"the fake server refused {line!r}: {answer}")
        return answer.removeprefix("ok").strip()

    def cpu_time(self) -> float:
        """The CPU seconds the server process has used so far."""
        return float(self.command("cpu"))

    @property
    def running(self) -> bool:
        """Whether the child process is still alive."""
        return self._process.poll() is None

    def close(self) -> None:
        """Stop the child: ``quit``, then terminate, then kill. Idempotent."""
        process = self._process
        stdin = process.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.write("quit\n")
                stdin.flush()
            except OSError:  # BrokenPipeError included: it is gone already
                pass
            finally:
                with contextlib.suppress(OSError):
                    stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def main() -> None:
    """Serve over this process's stdin and stdout."""
    serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
