"""A throwaway PostgreSQL server on loopback, run as a non-root user in a temp folder."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

from conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None




class PostgresServer:
    def __init__(self, folder: Path):
        self.folder = folder
        self.proc = None
        self.port = free_port()

    def _as_user(self, cmd: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root: use the postgres account the package made.
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start(self) -> str:
        """Start the server; returns a SQLAlchemy URL, or raises RuntimeError saying why not."""
        bindir = _bin_dir()
        if bindir is None:
            subprocess.run([str(ROOT / "scripts" / "install-debian.sh"), "postgresql",
                            "/usr/lib/postgresql/*/bin/initdb"], capture_output=True, timeout=600)
            bindir = _bin_dir()
        if bindir is None:
            raise RuntimeError("Debian's postgresql is not installed and could not be installed here")
        data, sock = self.folder / "data", self.folder / "sock"
        data.mkdir(parents=True)
        sock.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            for p in (data, sock):
                shutil.chown(p, "postgres")
            os.chmod(self.folder, 0o755)
        init = subprocess.run(self._as_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                             "--auth=trust", "-E", "UTF8"]), capture_output=True, text=True)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()[-300:]}")
        self.proc = subprocess.Popen(
            self._as_user([str(bindir / "postgres"), "-D", str(data), "-k", str(sock), "-h", "127.0.0.1",
                           "-p", str(self.port), "-c", "fsync=off"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read() if self.proc.poll() is not None else "timeout"
                    raise RuntimeError(f"postgres did not start: {err.strip()[-300:]}") from None
                time.sleep(0.2)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE optuna")
        conn.close()
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/optuna"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
