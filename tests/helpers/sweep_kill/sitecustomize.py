"""Test-only fault injection for tests/test_sweep_run.py (on PYTHONPATH there only).

With ``LRM_TEST_KILL_COUNTER=FILE`` and ``LRM_TEST_KILL_AT=N``, every response stored in
a response cache (``ResponseCache.put``), in any process, appends a byte to FILE; the
process that stores the N-th sends SIGKILL to its whole process group: the sweep and
the cell it runs die at once, as under the OOM killer or a lost machine.
"""

import os

if os.environ.get("LRM_TEST_KILL_COUNTER") and os.environ.get("LRM_TEST_KILL_AT"):
    import signal

    from lrm_backends.run import cache

    _put = cache.ResponseCache.put

    def _killing_put(self, entry):
        _put(self, entry)
        fd = os.open(os.environ["LRM_TEST_KILL_COUNTER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)
        if os.path.getsize(os.environ["LRM_TEST_KILL_COUNTER"]) >= int(os.environ["LRM_TEST_KILL_AT"]):
            os.killpg(os.getpgrp(), signal.SIGKILL)

    cache.ResponseCache.put = _killing_put
