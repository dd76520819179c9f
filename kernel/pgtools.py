"""PostgreSQL client programs (``pg_dump``, ``pg_restore``, ``psql``) for operators' commands.

The program must be at least as new as the server (``pg_dump`` refuses an older one). Looked for, in
order: ``bin_dir`` (the setting ``PG_BIN_DIR``), the binaries shipped with the embedded server's ``pgserver``
package, then ``PATH``; the first one new enough for ``server_version_num`` is used.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path


class ProgramNotFound(RuntimeError):
    pass


def _candidates(name: str, bin_dir: str) -> list[Path]:
    found = []
    if bin_dir:
        found.append(Path(bin_dir) / name)
    try:
        import pgserver

        found.append(Path(pgserver.__file__).parent / "pginstall" / "bin" / name)
    except ImportError:  # pragma: no cover - production images do not install it
        pass
    on_path = shutil.which(name)
    if on_path:
        found.append(Path(on_path))
    return [p for p in found if p.exists()]


def _major(program: Path) -> int:
    out = subprocess.run([str(program), "--version"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    match = re.search(r"\)\s*(\d+)", out)  # "pg_dump (PostgreSQL) 16.2"
    return int(match.group(1)) if match else 0


def program(name: str, *, server_version_num: int, bin_dir: str = "") -> Path:
    wanted = server_version_num // 10000
    candidates = _candidates(name, bin_dir)
    for candidate in candidates:
        if _major(candidate) >= wanted:
            return candidate
    raise ProgramNotFound(
        f"no {name} of PostgreSQL {wanted} or newer (looked at: {', '.join(map(str, candidates)) or 'nothing'}); "
        "install the client programs or set PG_BIN_DIR"
    )


def libpq_environment(settings_dict: dict) -> dict[str, str]:
    """The environment a client program needs to reach the database Django uses."""
    env = dict(os.environ)
    env.update(
        PGHOST=str(settings_dict.get("HOST") or ""),
        PGPORT=str(settings_dict.get("PORT") or "5432"),
        PGUSER=str(settings_dict.get("USER") or ""),
        PGDATABASE=str(settings_dict["NAME"]),
    )
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    return env
