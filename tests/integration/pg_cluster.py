"""A private PostgreSQL cluster for tests that crash and restart the database server.

The machine's shared PostgreSQL (FLEX4GRID_PG_URL) is used by other tests and people at the same
time, so a test that kills the server gets its own: `initdb` into a fresh directory, trust
authentication, a free port on 127.0.0.1 and its socket in that directory. `crash()` is
`pg_ctl stop -m immediate` (every server process quits at once, no checkpoint: crash recovery at
the next start), `start()` starts it again on the same port and waits until it accepts
connections. The cluster is stopped and its directory removed when the context exits; only the
postmaster of that directory is ever signalled (`pg_ctl -D`). A test process killed before that
(SIGKILL, a crashed xdist worker) leaves its cluster running: each new cluster first stops and
removes those whose creating process (`creator.pid` in the directory) is gone.

initdb refuses to run as root: run as root, every server command runs as the `postgres` user
(`runuser -u postgres --`) in a directory owned by it; run as anyone else, as that user. Where
the server binaries or that user are missing, the test skips with the reason (or fails under
FLEX4GRID_REQUIRE_SERVICES=1, see conftest.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.conftest import unavailable
from tests.ports import free_port

DATABASE = "flex4grid"
# Debian's layout; the newest version installed wins. FLEX4GRID_PG_BIN names another directory.
_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_SERVER_USER = "postgres"
_PREFIX = "f4g-pg-"
_CREATOR = "creator.pid"


def bin_dir() -> Path | None:
    """The directory with initdb, pg_ctl and postgres, or None."""
    named = os.environ.get("FLEX4GRID_PG_BIN")
    candidates = (
        [Path(named)]
        if named
        else sorted(Path("/").glob(_BIN_GLOB.lstrip("/")), key=_version, reverse=True)
    )
    for candidate in candidates:
        if all((candidate / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return candidate
    return None


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())


@dataclass
class PgCluster:
    bin: Path
    directory: Path  # owned by the server's user: data/, the socket, server.log
    port: int
    run_as: list[str]  # the command prefix that runs a server command as its user

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    @property
    def url(self) -> str:
        """The test database, for `vtn serve --db` and `Store`."""
        return f"postgresql://{_SERVER_USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _pg_ctl(self, *args: str, timeout_s: float = 60.0) -> None:
        command = [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.data), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise RuntimeError(
                f"pg_ctl {' '.join(args)} failed ({done.returncode}): {done.stderr}"
                f"\n{self.log_tail()}"
            )

    def start(self) -> None:
        """Start the server and wait until it accepts connections (after crash recovery)."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log), "-o", options)

    def crash(self) -> None:
        """Every server process quits at once: no checkpoint, no goodbye to the clients."""
        self._pg_ctl("stop", "-m", "immediate", "-w")

    def running(self) -> bool:
        command = [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _run_as() -> tuple[list[str], int | None] | str:
    """(command prefix, uid to own the directory) for running the server, or why we cannot."""
    if os.geteuid() != 0:
        return [], None  # initdb runs as any user but root
    try:
        uid = pwd.getpwnam(_SERVER_USER).pw_uid
    except KeyError:
        return f"running as root and there is no {_SERVER_USER!r} user to run initdb as"
    runuser = shutil.which("runuser")
    if runuser is None:
        return "running as root and runuser(1) is missing"
    return [runuser, "-u", _SERVER_USER, "--"], uid


def _remove_orphans(binaries: Path, run_as: list[str]) -> None:
    """Stop and remove the clusters of test processes that died before their teardown."""
    for directory in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            creator = int((directory / _CREATOR).read_text())
        except (OSError, ValueError):
            continue  # not one of ours, or still being made
        if Path(f"/proc/{creator}").exists():
            continue  # its test is still running (another pytest-xdist worker, say)
        orphan = PgCluster(binaries, directory, 0, run_as)
        if orphan.data.exists() and orphan.running():
            orphan._pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def private_cluster() -> Iterator[PgCluster]:
    """A fresh cluster with database `DATABASE`, running; stopped and removed afterwards."""
    binaries = bin_dir()
    if binaries is None:
        where = os.environ.get("FLEX4GRID_PG_BIN") or _BIN_GLOB
        unavailable("PostgreSQL server binaries", f"no initdb/pg_ctl/postgres in {where}")
        raise AssertionError("unreachable")  # unavailable() skips or fails
    how = _run_as()
    if isinstance(how, str):
        unavailable("a private PostgreSQL cluster", how)
        raise AssertionError("unreachable")
    run_as, uid = how
    # Not under pytest's tmp_path: its parents are private to root, and the server's user must
    # reach its own directory. Short, too: the socket path has a length limit.
    _remove_orphans(binaries, run_as)
    directory = Path(tempfile.mkdtemp(prefix=_PREFIX))
    (directory / _CREATOR).write_text(str(os.getpid()))
    if uid is not None:
        os.chown(directory, uid, -1)
    cluster = PgCluster(binaries, directory, free_port(), run_as)
    try:
        initdb = [
            *run_as, str(binaries / "initdb"), "-D", str(cluster.data), "-A", "trust",
            "-U", _SERVER_USER, "--no-sync", "--no-instructions", "-E", "UTF8",
        ]  # fmt: skip
        made = subprocess.run(initdb, capture_output=True, text=True, timeout=120, check=False)
        if made.returncode != 0:
            unavailable("a private PostgreSQL cluster", f"initdb failed: {made.stderr.strip()}")
        cluster.start()
        create = [
            *run_as, str(binaries / "createdb"), "-h", str(directory), "-p", str(cluster.port),
            "-U", _SERVER_USER, DATABASE,
        ]  # fmt: skip
        subprocess.run(create, capture_output=True, text=True, timeout=60, check=True)
        yield cluster
    finally:
        if cluster.data.exists() and cluster.running():
            cluster._pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(directory, ignore_errors=True)
