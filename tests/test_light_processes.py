"""Light processes: the web process and the CLI's help import only what they serve.

Each check runs in a fresh interpreter (this one has imported everything already) and reads
``sys.modules`` after the work, so a new top-level import anywhere on the web process's path
(a listener, a renderer, a settings loader, a state module) fails here, naming the module.
The serve test checks the other half of a light web process: each gunicorn worker builds its
own Redis connection after the fork, and the parent keeps none.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import httpx
import pytest

from bot.cli import COMMANDS, cli, main
from tests.polling import wait_until
from tests.redis_fixtures import DEFAULT_TEST_REDIS_URL
from tests.slack_harness import CONFIG, SECRET
from tests.test_web_serve import free_port, start_serve

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)

#: What the web process and `churnbot --help` never load: the model side (pandas, scikit-learn
#: and scipy, skops), test tools (pytest; fakeredis when REDIS_URL is set) and charts.
HEAVY = ("pandas", "sklearn", "scipy", "skops", "pytest", "fakeredis", "matplotlib")

REPORT = """
import json, sys
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1:]))))
"""


def loaded_after(
    code: str, env: dict[str, str] | None = None, watched: tuple[str, ...] = HEAVY
) -> list[str]:
    """The ``watched`` modules a fresh interpreter holds after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", code + REPORT, *watched],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found: list[str] = json.loads(done.stdout.splitlines()[-1])
    return found


def web_environment() -> dict[str, str]:
    return {
        "REDIS_URL": REDIS_URL,
        "CHURNBOT_CONFIG": str(CONFIG),
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": "xoxb-test",
    }


#: Waits for the thread in which a worker builds its Bolt app (``bot.cli.serve``).
JOIN_BUILD = """
import sys, threading
from bot.cli.serve import BUILD_THREAD
for thread in threading.enumerate():
    if thread.name == BUILD_THREAD:
        thread.join(timeout=60)
assert "bot.listeners.feedback" in sys.modules, "no Bolt app was built"
"""

#: What one gunicorn worker does: import bot.web, build the app with serve's factory (the Bolt
#: app in a background thread, waited for here).
WEB_WORKER = (
    """
import os
import bot.web
from bot.cli.serve import web_app
from bot.settings import load_settings
web_app(load_settings(os.environ))
"""
    + JOIN_BUILD
)


def test_the_web_process_imports_nothing_it_does_not_serve() -> None:
    """Importing the app and building it from the settings, as a worker does: the settings'
    check of sources.yaml parses mapped values with the validator's parsers (pandas) only
    when there are some, and the default config maps none."""
    assert loaded_after(WEB_WORKER, web_environment()) == []


#: `churnbot serve` as run, up to gunicorn's fork: the parent's checks (settings, secrets,
#: Redis), then one worker's app built by the same factory, in this one process. The parent
#: pauses the garbage collector while it loads: it must be on again when gunicorn forks, with
#: what the parent loaded frozen (out of the workers' collections), and the workers' code
#: imported once there rather than by each worker. ``served_with``: what of
#: :data:`LOADED_AFTER_THE_APP` the worker had loaded when, its app served, it went on to load
#: what reading a card needs (``bot.cli.serve.load_card_reads``).
SERVE_TO_FIRST_WORKER = (
    """
import gc, sys
from bot.cli import main, serve

def run(self):
    assert gc.isenabled(), "gunicorn would fork its workers with the garbage collector off"
    assert gc.get_freeze_count() > 0, "each worker's collector would walk the parent's objects"
    unloaded = [name for name in serve.WORKER_MODULES if name not in sys.modules]
    assert not unloaded, f"each worker would import {unloaded} itself"
    self.load()

served_with = []
load_card_reads = serve.load_card_reads

def load_once_served(deps):
    served_with.append(sorted({name.split(".")[0] for name in sys.modules} & {"numpy", "rich"}))
    load_card_reads(deps)

serve._Gunicorn.run = run
serve.load_card_reads = load_once_served
assert main(["serve", "--host", "127.0.0.1"]) == 0
"""
    + JOIN_BUILD
    + """
for thread in threading.enumerate():
    if thread.name == serve.CARD_READS_THREAD:
        thread.join(timeout=60)
assert served_with == [[]], f"the app was served with {served_with} loaded"
"""
)

#: What `churnbot serve` does not load before a worker serves its app: numpy (the snapshot
#: store) comes after, in a thread of its own a second later (``load_card_reads``), so that no
#: card read waits for it; rich with a progress bar or the CLI's console.
LOADED_AFTER_THE_APP = ("numpy", "rich")


def test_serve_starts_a_worker_without_numpy_or_rich() -> None:
    """The serve parent reads and checks the whole config folder, and a worker builds the app
    with every listener, without loading numpy or rich (both cost a start tens of ms), and
    with the garbage collector on again; then the worker loads numpy for the cards, before a
    click or `/churn` reads one."""
    watched = (*HEAVY, *LOADED_AFTER_THE_APP)
    assert loaded_after(SERVE_TO_FIRST_WORKER, web_environment(), watched) == ["numpy"]


def test_the_cli_console_loads_rich_when_first_used() -> None:
    code = """
import sys
from bot.cli import common
assert "rich" not in sys.modules
from bot.cli.common import console, out
assert console.stderr and not out.stderr and common.console is console
"""
    assert loaded_after(code, watched=("rich",)) == ["rich"]


def test_importing_the_web_process_loads_no_pandas() -> None:
    assert loaded_after("import bot.web, bot.app, bot.cli.serve") == []


def test_importing_the_web_door_loads_no_numpy() -> None:
    """`import bot.web, bot.door` is the probes, the metrics page and the web door: numpy (the
    snapshot store, the playbook) comes only with the app a worker builds."""
    assert loaded_after("import bot.web, bot.door", watched=("numpy",)) == []


def test_a_worker_answers_its_probes_without_bolt() -> None:
    """What a worker builds before it answers `/healthz` (its deps and the WSGI callable, the
    Bolt app still to come) loads no Bolt: the probes never wait for it to be imported, where
    the serve parent has not (a test), and the app comes in the background
    (``bot.cli.serve.build_in_background``)."""
    code = """
import os
from concurrent.futures import Future
from bot.deps import build_deps
from bot.settings import load_settings
from bot.web import build_wsgi
build_wsgi(Future(), build_deps(load_settings(os.environ)))
"""
    assert loaded_after(code, web_environment(), ("slack_bolt",)) == []


def test_the_cli_help_and_serve_help_import_no_model_libraries() -> None:
    code = """
from bot.cli import main
assert main(["--help"]) == 0
assert main(["serve", "--help"]) == 0
"""
    assert loaded_after(code) == []


def test_the_help_summaries_are_the_commands_own() -> None:
    """`churnbot --help` lists the summaries in bot.cli.COMMANDS without importing the
    commands: each must stay the first sentence of its command's docstring."""
    context = click.Context(cli)
    for name, (_, _, summary) in COMMANDS.items():
        command = cli.get_command(context, name)
        assert command is not None, name
        assert command.get_short_help_str(limit=300) == summary, name


def test_serve_refuses_several_workers_on_the_embedded_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without REDIS_URL each worker would hold its own embedded store: one worker only."""
    monkeypatch.setenv("CHURNBOT_CONFIG", str(CONFIG))
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    assert main(["serve", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "--workers 2 needs REDIS_URL" in err
    assert "Traceback" not in err


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # the process ended while we looked
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _redis_sockets(pid: int, port: int) -> set[int]:
    """Inodes of the TCP sockets process ``pid`` holds open to ``port`` (Linux /proc)."""
    remote = f":{port:04X}"
    connected = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[2].endswith(remote):
                connected.add(int(fields[9]))
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(int(target[8:-1]))
    return held & connected


@contextlib.contextmanager
def serving(
    env: dict[str, str] | None = None, *, probe: str = "/readyz"
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A real `churnbot serve` (no --workers) on a free port, ``env`` over the web
    environment, once it answers ``probe``."""
    port = free_port()
    environment = {**web_environment(), **(env or {}), "PORT": str(port)}
    server = start_serve(environment, host="127.0.0.1")
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        try:
            return httpx.get(f"{url}{probe}", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, f"churnbot serve to answer {probe}", timeout=60, interval=0.01)
        yield server, url
    finally:
        server.terminate()
        server.communicate(timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_serve_runs_two_workers_each_with_its_own_redis_connection() -> None:
    """`churnbot serve` with no --workers: two gunicorn workers, each connected to Redis on
    its own socket, made after the fork; the parent holds none (a connection made before the
    fork would be one socket shared by both workers)."""
    redis_port = int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    with serving() as (server, _):

        def connected_workers() -> dict[int, set[int]]:
            sockets = {child: _redis_sockets(child, redis_port) for child in _children(server.pid)}
            return {child: held for child, held in sockets.items() if held}

        wait_until(
            lambda: len(connected_workers()) == 2, "two workers connected to Redis", timeout=30
        )
        workers = connected_workers()
        assert len(_children(server.pid)) == 2
        first, second = workers.values()
        assert not first & second
        assert _redis_sockets(server.pid, redis_port) == set()


@pytest.mark.slow
def test_two_workers_serve_one_set_of_metrics() -> None:
    """Whichever worker answers a scrape, /metrics counts the requests of both (each worker
    alone would show only its own share, and the counter would jump between scrapes)."""
    with serving() as (_, url), httpx.Client(timeout=10) as http:
        with ThreadPoolExecutor(16) as pool:
            statuses = set(
                pool.map(lambda _: http.post(f"{url}/slack/events", content=b"x").status_code,
                         range(40))
            )  # fmt: skip
        assert statuses == {401}
        counted = 'churnbot_requests_total{handler="unauthenticated",outcome="http_401"} 40.0'
        for _ in range(8):
            lines = http.get(f"{url}/metrics").text.splitlines()
            assert counted in lines
            assert [line for line in lines if line.startswith("churnbot_redis_up")] == [
                "churnbot_redis_up 1.0"
            ]


def test_the_worker_freezes_what_it_loaded_before_its_threads_start() -> None:
    """`churnbot worker` freezes what it loaded (modules, settings, the app's clients) before
    its scheduler and digest threads start, so their collections never walk it."""
    code = """
import gc, os
from bot.cli import main
from bot.digest.scheduler import DigestWorker

def start(self):
    print(f"frozen {gc.get_freeze_count()}", flush=True)
    os._exit(0)

DigestWorker.start = start
main(["worker"])
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **web_environment()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    frozen = int(done.stdout.split("frozen ")[1].split()[0])
    assert frozen > 1000, done.stdout
