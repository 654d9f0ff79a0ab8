"""``churnbot worker`` as a real process: two of them on one Redis (a deploy) take up a crashed
digest once and both keep a beating scheduler; a worker whose scheduler thread stops exits
with an error so that it is restarted.

A private redis-server (the processes use the default ``churnbot`` key prefix) and the Web API
emulator in this process; every wait is a bounded poll.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

import bot.cli.worker as worker_cli
from bot.cli import main
from bot.deps import build_deps
from bot.digest import scheduler
from bot.digest.poster import build_poster
from bot.digest.sender import DigestSender
from bot.emulator import SlackEmulator
from bot.feedback.drain import DrainThread
from bot.settings import load_settings
from bot.state import connect
from tests.polling import wait_until
from tests.slack_harness import CONFIG, process_environment, publish
from tests.test_digest_posting import EAST, DyingClient, WorkerKilled, maria_book
from tests.test_feedback_outage import RedisServer

CHURNBOT = str(Path(sys.executable).with_name("churnbot"))
TIMEOUT_S = 40.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        server.crash()


def far_from_now(target: Path) -> Path:
    """The shipped config, every schedule moved to 12 hours from now (UTC), in ``target``.

    The worker processes read the wall clock: with the shipped schedules, a worker started
    within the grace window after a real scheduled time (Monday 14:00-16:00 UTC for cs-east)
    would also post that week's scheduled digest, and the test would count two."""
    shutil.copytree(CONFIG, target)
    channels = yaml.safe_load((target / "channels.yaml").read_text())
    due = dt.datetime.now(dt.UTC) + dt.timedelta(hours=12)
    for item in [channels["scoring"], *channels["digests"]]:
        item["schedule"], item["timezone"] = f"{due.minute} {due.hour} * * *", "UTC"
    (target / "channels.yaml").write_text(yaml.safe_dump(channels, sort_keys=False))
    return target


def poll(condition: Callable[[], object], what: str) -> None:
    wait_until(condition, what, timeout=TIMEOUT_S, interval=0.05)


def heartbeats(r: redis.Redis) -> dict[str, str]:
    keys = sorted(r.scan_iter(match="churnbot:{scheduler}:heartbeat:*"))
    return {key: str(r.get(key) or "") for key in keys}


def test_two_worker_processes_resume_a_crashed_digest_once_and_keep_beating(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    with SlackEmulator() as emulator:
        env = process_environment(
            emulator, f"redis://127.0.0.1:{own_redis.port}/0", far_from_now(tmp_path / "config")
        )
        r = connect(env["REDIS_URL"])
        deps = build_deps(load_settings(env), client=r)
        publish(deps, maria_book(10))
        digest = deps.settings.channels.by_name("cs-east")
        assert digest is not None
        doomed = DyingClient(
            token=emulator.token, base_url=emulator.base_url, retry_handlers=[], die_before=1
        )
        crashed = build_poster(deps, DigestSender(doomed))
        with pytest.raises(WorkerKilled):  # a `digest now` whose worker died before posting
            crashed.run(digest, dt.datetime.now(dt.UTC), manual=True)
        for key in r.scan_iter(match="churnbot:*:claim:*"):
            r.delete(key)  # its lease ran out
        processes = [
            subprocess.Popen(
                [CHURNBOT, "worker", "--heartbeat-seconds", "0.5", "--metrics-port", "0"],
                env={**os.environ, **env},
                stdout=(tmp_path / f"worker{n}.out").open("w"),
                stderr=(tmp_path / f"worker{n}.err").open("w"),
            )
            for n in range(2)
        ]
        try:
            emulator.wait_for(
                lambda c: c.method == "chat.postMessage" and c.ok, count=1, timeout=TIMEOUT_S
            )
            poll(lambda: _closed(r), "the slot to be finished")
            poll(lambda: len(heartbeats(r)) == 2, "a heartbeat key per worker")
            first = heartbeats(r)
            poll(  # each scheduler thread runs its heartbeat job again: both still fire
                lambda: all(heartbeats(r).get(k, v) != v for k, v in first.items()),
                "both heartbeat jobs to run",
            )
            assert [p.poll() for p in processes] == [None, None], "both workers still run"
            assert len(emulator.messages(EAST)) == 1, "the digest went out once"
            for n in range(2):
                metrics = scrape(tmp_path / f"worker{n}.err")
                assert "churnbot_worker_scheduler_up 1.0" in metrics
                assert 'churnbot_digests_total{outcome="posted"}' in metrics
                assert "churnbot_freshness_sla_seconds 86400.0" in metrics
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(timeout=TIMEOUT_S) for process in processes]
        errors = "".join((tmp_path / f"worker{n}.err").read_text() for n in range(2))
        assert codes == [0, 0], errors
        assert "JobLookupError" not in errors
        assert "Traceback" not in errors


def scrape(log: Path) -> str:
    """The worker's /metrics, at the address its log names."""
    urls: list[str] = []

    def named() -> list[str]:
        urls.extend(re.findall(r"Metrics on (http://\S+)", log.read_text()))
        return urls

    poll(named, "the metrics address in the log")
    return httpx.get(urls[0], timeout=5).text


def _closed(r: redis.Redis) -> bool:
    return not r.smembers("churnbot:{digest:cs-east}:open")


def worker_stopped_by(
    monkeypatch: pytest.MonkeyPatch,
    server: RedisServer,
    config: Path,
    fault: Callable[[], None],
) -> int:
    """Run ``churnbot worker`` in this process while ``fault`` runs beside it; its exit code."""
    monkeypatch.setattr(worker_cli, "WATCHDOG_SECONDS", 0.05)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    with SlackEmulator() as emulator:
        for name, value in process_environment(
            emulator, f"redis://127.0.0.1:{server.port}/0", config
        ).items():
            monkeypatch.setenv(name, value)
        killer = threading.Thread(target=fault, daemon=True)
        killer.start()
        try:
            code = main(["worker"])
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        killer.join(timeout=TIMEOUT_S)
    return code


def test_a_worker_whose_scheduler_thread_stops_exits_with_an_error(
    own_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    def stop_the_scheduler_thread() -> None:
        poll(lambda: "churnbot" in scheduler._workers, "the worker to start")
        with scheduler._workers_lock:
            worker = scheduler._workers["churnbot"]
        poll(lambda: worker.health() is None and worker._firing, "the worker to fire")
        worker.scheduler.shutdown(wait=False)  # the thread ends; the process does not

    config = far_from_now(tmp_path / "config")
    assert worker_stopped_by(monkeypatch, own_redis, config, stop_the_scheduler_thread) != 0
    assert "the scheduler thread died; the worker exits so that it is restarted" in (
        capsys.readouterr().err
    )


def test_a_worker_whose_refresh_drain_thread_ends_exits_with_an_error(
    own_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    started: list[DrainThread] = []

    class Recorded(DrainThread):
        def start(self) -> DrainThread:
            started.append(self)
            return super().start()

    monkeypatch.setattr(worker_cli, "DrainThread", Recorded)

    def end_the_drain_thread() -> None:
        poll(lambda: started and started[0].is_alive(), "the drain to start")
        started[0].stop()  # the thread ends; the process does not

    config = far_from_now(tmp_path / "config")
    assert worker_stopped_by(monkeypatch, own_redis, config, end_the_drain_thread) != 0
    assert "the feedback refresh thread died; the worker exits so that it is restarted" in (
        capsys.readouterr().err
    )
