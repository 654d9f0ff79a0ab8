"""How long `churnbot serve` takes to answer its first `/healthz`, against a bare Bolt app.

Both run as production would, in their own process group started by this script: `churnbot
serve` (gunicorn, gthread, --workers N), and the floor, `bench/bare_bolt.py` (a Bolt app with
one listener that only acknowledges, on the same gunicorn with the same worker and thread
counts). The time is from starting the process to the first `GET /healthz` answered 200,
polled every 5 ms, and to the answer of a signed `/churn help` sent right after it (a
churnbot worker answers its probes while it builds its Bolt app, so a Slack request then may
wait: the second figure is what a user would meet); the two alternate, --runs times each.
Then the import time of `bot.web`
(what a worker imports to answer its probes) and of `bot.door` (the web door to Bolt, which a
worker imports while it builds its Bolt app after it can answer) against `slack_bolt`
(`python -X importtime`, cumulative microseconds of the top module), alternating as well.
Prints min and median of each and the ratios (targets: ready <= 2x the bare app, `import
bot.web` < 0.5 s).

Both start with their bytecode compiled, as installed code is (pip compiles a wheel's modules
at install; an editable install writes them on its first start): the servers run with a
private PYTHONPYCACHEPREFIX, filled by one unmeasured start of each, and without
PYTHONDONTWRITEBYTECODE. Otherwise (that variable set, as on some machines) churnbot would
compile its own ~150 modules from source at every start while the floor's libraries come
precompiled from site-packages. --compile-each-start measures that case instead.

churnbot needs a Redis that answers (REDIS_URL, default the local one); it writes nothing.

Usage: .venv/bin/python bench/serve_ready.py [--runs 5] [--workers 2] [--redis-url URL]
       [--compile-each-start]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from bot.emulator import SlackEmulator

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
POLL_S = 0.005
TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def answered(port: int, secret: str) -> bool:
    """Whether a signed `/churn help`, sent as Slack sends it, is answered 200. Each request
    has its own ``trigger_id``, as Slack's have: two starts within one second must not send
    the same signed body, which churnbot's replay guard refuses."""
    body = urlencode(
        {"command": "/churn", "text": "help", "user_id": "U0BENCH", "team_id": "T0BENCH",
         "channel_id": "C0BENCH", "response_url": "http://127.0.0.1:9/response",
         "trigger_id": f"bench.{time.time_ns()}"}
    )  # fmt: skip
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/slack/events", body=body, headers=headers)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def time_to_healthy(command: list[str], env: dict[str, str], port: int) -> tuple[float, float]:
    """Seconds from starting ``command`` to its first healthy /healthz, and to the first
    answer to a Slack request sent right after it (what a user waits for: a server may
    answer its probes before it can serve Slack); then stop it."""
    started = time.perf_counter()
    server = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        while not healthy(port):
            if server.poll() is not None:
                err = server.stderr.read().decode() if server.stderr else ""
                raise SystemExit(f"{command[1]} exited before answering:\n{err[-2000:]}")
            if time.perf_counter() - started > TIMEOUT_S:
                raise SystemExit(f"{command[1]} did not answer /healthz in {TIMEOUT_S:g} s")
            time.sleep(POLL_S)  # the polling interval of a bounded wait
        healthy_s = time.perf_counter() - started
        if not answered(port, env["SLACK_SIGNING_SECRET"]):
            raise SystemExit(f"{command[1]} did not answer a signed /churn after /healthz")
        return healthy_s, time.perf_counter() - started
    finally:
        server.terminate()
        server.communicate(timeout=30)


def import_seconds(module: str, env: dict[str, str]) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter (``-X importtime``)."""
    done = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", f"import {module}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(done.stderr.splitlines()):
        fields = [field.strip() for field in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1]) / 1e6
    raise SystemExit(f"no import time for {module} in:\n{done.stderr[-2000:]}")


def summary(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def print_versus(title: str, seconds: dict[str, list[float]]) -> None:
    """One figure of both apps, floor first, and churnbot's ratio to it (target 2x)."""
    print(title)
    bare_min, bare_median = summary(seconds["bare Bolt app on gunicorn"])
    ours_min, ours_median = summary(seconds["churnbot serve"])
    print(f"  bare Bolt app on gunicorn (floor)  min {bare_min:.3f} s  median {bare_median:.3f} s")
    print(f"  churnbot serve                     min {ours_min:.3f} s  median {ours_median:.3f} s")
    print(f"  ratio  min {ours_min / bare_min:.2f}x  median {ours_median / bare_median:.2f}x"
          "  (target <= 2x)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="alternating runs of each (>= 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, both apps")
    parser.add_argument("--threads", type=int, default=8, help="gthread threads, both apps")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument(
        "--compile-each-start",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE as set and no bytecode cache (see above)",
    )
    args = parser.parse_args()
    # Bolt asks auth.test on an app's first request: the emulator answers for Slack.
    with (
        tempfile.TemporaryDirectory(prefix="serve-ready-pyc-") as pycache,
        SlackEmulator() as slack,
    ):
        measure(args, slack, pycache=None if args.compile_each_start else pycache)


def measure(args: argparse.Namespace, slack: SlackEmulator, *, pycache: str | None) -> None:
    """Alternate the two starts (after one unmeasured start each when ``pycache`` is given)
    and the two imports; print the figures."""
    base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHURNBOT_"))},
        "REDIS_URL": args.redis_url,
        "SLACK_SIGNING_SECRET": "bench-signing-secret",
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_API_URL": slack.base_url,
        "CHURNBOT_CONFIG": str(ROOT / "config"),
    }
    if pycache is not None:
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
        base_env["PYTHONPYCACHEPREFIX"] = pycache
    churnbot = str(Path(PYTHON).with_name("churnbot"))
    threads = str(args.threads)
    ready: dict[str, list[float]] = {"bare Bolt app on gunicorn": [], "churnbot serve": []}
    first_answer: dict[str, list[float]] = {label: [] for label in ready}
    warm_up = 1 if pycache is not None else 0
    for run in range(-warm_up, args.runs):
        for label in ready:
            port = free_port()
            env = {**base_env, "PORT": str(port)}
            if label == "churnbot serve":
                command = [churnbot, "serve", "--host", "127.0.0.1",
                           "--workers", str(args.workers), "--threads", threads]  # fmt: skip
            else:
                command = [PYTHON, "-m", "gunicorn", "--chdir", str(ROOT / "bench"),
                           "-k", "gthread", "-w", str(args.workers), "--threads", threads,
                           "--no-control-socket", "-b", f"127.0.0.1:{port}",
                           "bare_bolt:app"]  # fmt: skip
            seconds, answer = time_to_healthy(command, env, port)
            if run < 0:
                print(f"warm-up (bytecode): {label}: {seconds:.3f} s", file=sys.stderr)
                continue
            ready[label].append(seconds)
            first_answer[label].append(answer)
            print(f"run {run + 1}: {label}: {seconds:.3f} s, answered {answer:.3f} s",
                  file=sys.stderr)  # fmt: skip
    imports: dict[str, list[float]] = {"slack_bolt": [], "bot.web": [], "bot.door": []}
    for _ in range(args.runs):
        for module in imports:
            imports[module].append(import_seconds(module, base_env))

    compiled = "compiled at each start" if pycache is None else "bytecode cached"
    print_versus(
        f"start to first healthy /healthz, {args.workers} gunicorn workers, {args.runs} runs, "
        f"{compiled}:",
        ready,
    )
    print_versus(
        "start to the answer of a signed /churn sent right after the first healthy /healthz:",
        first_answer,
    )
    print("import time (python -X importtime, cumulative):")
    bolt_min, bolt_median = summary(imports["slack_bolt"])
    web_min, web_median = summary(imports["bot.web"])
    print(f"  import slack_bolt (floor)  min {bolt_min:.3f} s  median {bolt_median:.3f} s")
    print(f"  import bot.web             min {web_min:.3f} s  median {web_median:.3f} s"
          "  (target < 0.5 s)")  # fmt: skip
    print(f"  ratio  min {web_min / bolt_min:.2f}x  median {web_median / bolt_median:.2f}x")
    door_min, door_median = summary(imports["bot.door"])
    print(f"  import bot.door            min {door_min:.3f} s  median {door_median:.3f} s")
    print(f"  ratio  min {door_min / bolt_min:.2f}x  median {door_median / bolt_median:.2f}x")


if __name__ == "__main__":
    main()
