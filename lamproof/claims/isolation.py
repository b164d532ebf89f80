"""Checking claims in a child process: a claim that exits, crashes or loops costs only itself.

:func:`check_isolated` (what ``lamproof check`` runs) forks one child process that imports the
claims file, checks the claims in order and sends each :class:`ClaimResult` back through a pipe
as it is done. The parent gives the import and each claim ``timeout`` seconds. At the deadline it
kills the child and reports a timeout for that claim (or for the file's import); when the child
dies (``os._exit``, a crash) it reports that. Either way a new child goes on with the next
claim, so the other claims still run. ``SystemExit`` inside a claim is caught in the child by
:func:`lamproof.claims.core.check` and is that claim's error, like any exception.

Results come back pickled, so they are the child's own objects, counterexample included. Forking
copies the parent, whose modules are already imported: a child costs milliseconds. Ctrl-C
reaches the parent (the child ignores it), which kills the child and stops. Where ``fork`` is
not available the claims run in this process, without a timeout.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import wait
from pathlib import Path

from lamproof.claims.core import Claim, ClaimResult, check, error_result

#: Seconds a claim (or the import of a claims file) may take before it is stopped and reported
#: as a timeout. A builtin claim takes under 2 s at 50 examples and shrinking stops at
#: ``SHRINK_SECONDS`` = 20 s, so 60 s stops only what would not end.
DEFAULT_TIMEOUT = 60.0

#: How often (seconds) a child checks that its parent is still alive: a parent killed without
#: the chance to kill its child must not leave a looping claim running forever.
_ORPHAN_POLL = 0.5


def check_isolated(
    source,
    *,
    examples: int = 100,
    seed: int = 0,
    shrink: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    on_result=None,
) -> list[ClaimResult]:
    """Check the claims of ``source`` (a list of claims, or the path of a claims file).

    Like :func:`lamproof.claims.core.check_all`, one result per claim in order, but each claim
    runs in a child process with ``timeout`` seconds. A claims file is imported in the child
    (with the same deadline); a file that does not import gives one ``"error"`` result, a file
    without claims an empty list.
    """
    if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not POSIX
        from lamproof.claims.core import check_all
        from lamproof.claims.files import load_claims

        claims = load_claims(source) if isinstance(source, (str, Path)) else source
        return check_all(claims, examples=examples, seed=seed, shrink=shrink, on_result=on_result)
    results: list[ClaimResult] = []
    start, total = 0, None
    while total is None or start < total:
        total, start = _run_child(
            source,
            start,
            total,
            results,
            examples=examples,
            seed=seed,
            shrink=shrink,
            timeout=timeout,
            on_result=on_result,
        )
    return results


def _run_child(source, start, total, results, *, examples, seed, shrink, timeout, on_result):
    """One child from claim ``start`` on, until it finishes, dies or times out; the new ``(total, start)``."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(sender, source, start, examples, seed, shrink), daemon=True
    )
    sys.stdout.flush()  # or the child would inherit, and print again, what is still buffered
    sys.stderr.flush()
    process.start()
    sender.close()
    running = None  # (index, (name, statement, expect, source)) of the claim being checked
    began = time.monotonic()
    try:
        while True:
            message = _receive(receiver, process, began + timeout, timeout)
            kind = message[0]
            if kind == "loaded":
                total, began = message[1], time.monotonic()
            elif kind == "start":
                running, began = message[1:], time.monotonic()
            elif kind == "result":
                _report(results, _unpickle(message[2], running[1]), on_result)
                start, running = message[1] + 1, None
            elif kind == "done":
                return total, total
            else:  # "timeout" or "died": report the claim (or the import) it happened in, go on after it
                if total is None:
                    name = Path(source).name if isinstance(source, (str, Path)) else "claims"
                    result = error_result(name, f"{kind}: the file's import {message[1]}")
                    total = start = 0
                else:
                    index, (name, statement, expect, claim_source) = running or (
                        start,
                        (f"claim #{start + 1}", "", "true", ""),
                    )
                    result = error_result(
                        name,
                        f"{kind}: the claim {message[1]}",
                        statement=statement,
                        expect=expect,
                        source=claim_source,
                    )
                    start = index + 1
                result.seconds = time.monotonic() - began
                _report(results, result, on_result)
                return total, start
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()


def _report(results, result, on_result) -> None:
    results.append(result)
    if on_result is not None:
        on_result(result)


def _receive(receiver, process, deadline: float, timeout: float):
    """The child's next message, or ``("timeout", why)`` / ``("died", why)``."""
    ready = wait([receiver, process.sentinel], timeout=max(0.0, deadline - time.monotonic()))
    if receiver in ready or receiver.poll():
        try:
            return receiver.recv()
        except EOFError:  # the child closed the pipe as it died
            pass
    if not ready:
        process.kill()
        return ("timeout", f"did not finish within {timeout:g} s (--timeout)")
    process.join()
    code = process.exitcode
    how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
    return ("died", f"ended its process ({how}) before reporting a result")


def _unpickle(payload: bytes, meta) -> ClaimResult:
    try:
        return pickle.loads(payload)
    except Exception as error:  # e.g. a counterexample of a class only the child had imported
        name, statement, expect, claim_source = meta
        return error_result(
            name,
            f"the result could not be passed back from the child process ({error!r})",
            statement=statement,
            expect=expect,
            source=claim_source,
        )


def _exit_with_parent(parent: int) -> None:
    while True:
        time.sleep(_ORPHAN_POLL)
        if os.getppid() != parent:
            os._exit(1)


def _child(sender, source, start, examples, seed, shrink) -> None:
    """Import (if a path), then check claims ``start, start + 1, …``, reporting each to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        if isinstance(source, (str, Path)):
            from lamproof.claims.files import load_claims

            claims = load_claims(source)
        else:
            claims = list(source)
        sender.send(("loaded", len(claims)))
        for index in range(start, len(claims)):
            item = claims[index]
            if isinstance(item, ClaimResult):
                meta = (item.name, item.statement, item.expect, item.source)
            else:
                claim = item if isinstance(item, Claim) else None
                meta = (
                    getattr(item, "name", getattr(item, "__name__", "claim")),
                    claim.statement if claim else "",
                    claim.expect if claim else "true",
                    claim.source if claim else "",
                )
            sender.send(("start", index, meta))
            result = item if isinstance(item, ClaimResult) else _check(item, examples, seed, shrink)
            sender.send(("result", index, _pickled(result)))
        sender.send(("done",))
    finally:
        sender.close()
        sys.stdout.flush()  # what the claims printed
        sys.stderr.flush()
        os._exit(0)  # no atexit handlers of the parent run twice


def _check(item, examples, seed, shrink) -> ClaimResult:
    try:
        return check(item, examples=examples, seed=seed, shrink=shrink)
    except BaseException as error:  # SystemExit from a strategy, say: this claim's error
        name = getattr(item, "name", getattr(item, "__name__", "claim"))
        return error_result(
            name,
            f"{type(error).__name__}: {error}".rstrip(": "),
            statement=getattr(item, "statement", ""),
            expect=getattr(item, "expect", "true"),
            source=getattr(item, "source", ""),
        )


def _pickled(result: ClaimResult) -> bytes:
    try:
        return pickle.dumps(result)
    except Exception as error:  # a counterexample that does not pickle: keep the verdict
        result.counterexample = None
        result.note = (result.note + " " if result.note else "") + f"(counterexample not shown: {error!r})"
        return pickle.dumps(result)
