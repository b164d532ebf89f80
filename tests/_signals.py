"""Start test subprocesses with Ctrl-C (SIGINT) at its default, whatever the suite inherited.

A non-interactive shell starts background jobs (`bash .ci/run &`) with SIGINT ignored, children
inherit that, and Python then installs no KeyboardInterrupt handler: a test that sends SIGINT would
see a process that cannot be interrupted. Pass ``preexec_fn=default_sigint`` to ``Popen``.
"""

import signal


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
