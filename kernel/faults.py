"""Named crash points for fault-injection tests.

``point("name")`` does nothing unless the process was started with ``GATEWAY_FAULT_POINT=name``;
then it writes ``GATEWAY_FAULT_MARKER`` (a file path) and stops dead, waiting to be killed. Tests use
it to SIGKILL a real process at an exact step (between the ledger write and the commit, say) and
check that restart + sweep leave nothing lost or counted twice. Disabled, it costs one comparison.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_ARMED = os.environ.get("GATEWAY_FAULT_POINT")


def point(name: str) -> None:
    if _ARMED is None or _ARMED != name:
        return
    Path(os.environ["GATEWAY_FAULT_MARKER"]).write_text(name)
    while True:  # wait for the SIGKILL
        time.sleep(60)
