"""Shared by benchmarks/load_test.py and benchmarks/crash_test.py: a real `sealcheck serve` in
its own process, on SQLite or on a fresh PostgreSQL schema, and the photo pairs they send.

Test and benchmark tooling only; the service never imports it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testkit.server import POSTGRES_URL, SEALCHECK  # noqa: E402


@dataclass
class Database:
    """Where one run keeps its rows: an SQLite file in the data directory or a new schema."""

    backend: str
    data_dir: Path
    url: str
    schema: str | None = None

    def engine(self):
        from service.db import make_engine

        return make_engine(self.url)


@contextlib.contextmanager
def database(backend: str, data_dir: Path) -> Iterator[Database]:
    """A fresh, empty database; a PostgreSQL schema is dropped afterwards."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        yield Database(backend, data_dir, f"sqlite:///{data_dir / 'sealcheck.db'}")
        return
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    schema = f"sealcheck_rel_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options={urllib.parse.quote(f'-csearch_path={schema}')}"
    try:
        yield Database(backend, data_dir, url, schema)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Server:
    """`sealcheck serve` in a subprocess, restartable on the same database and data."""

    db: Database
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALCHECK_")}
        env.update(SEALCHECK_DATABASE_URL=self.db.url, SEALCHECK_DATA_DIR=str(self.db.data_dir),
                   **self.extra_env)
        return env

    def create_key(self, tenant: str) -> str:
        done = subprocess.run([SEALCHECK, "keys", "create", "--tenant", tenant], env=self.env(),
                              capture_output=True, text=True, cwd=self.db.data_dir, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"sealcheck keys create failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def start(self) -> None:
        log = open(self.db.data_dir / "server.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.process = subprocess.Popen([SEALCHECK, "serve", "--port", str(self.port)],
                                        env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.db.data_dir)
        log.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with {self.process.returncode}:\n"
                                 + self.log_tail())
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("the server did not become ready in 120 s:\n" + self.log_tail())

    def kill_9(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown handler runs, nothing is flushed
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, n: int = 3000) -> str:
        path = self.db.data_dir / "server.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""


def photo_pairs(size: tuple[int, int]) -> list[dict]:
    """Golden/unit pairs of several products as JPEG bytes, with the ROI spec: a flawless
    unit, stained, scratched, colour-drifted (testkit/scenes.py, known truth)."""
    from testkit.photos import jpeg
    from testkit.scenes import Camera, lab_shift, make_pair

    camera = Camera(width=size[0], height=size[1])
    pairs = []
    for n, (product, defects, drift) in enumerate((
            ("astronaut", (), None), ("coffee", (("stain", 12.0),), None),
            ("chelsea", (("scratch", 15.0),), None), ("rocket", (), lab_shift(delta_L=4.0)))):
        pair = make_pair(product, golden_camera=camera, defects=defects, drift=drift, seed=n + 1)
        pairs.append({"product": product, "golden": jpeg(pair.golden, 90),
                      "unit": jpeg(pair.unit, 90), "roi": [int(v) for v in pair.roi]})
    return pairs
