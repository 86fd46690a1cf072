"""Fleet benchmark: simulated agents against the appliance on PostgreSQL, one replica, then two.

    uv run python -m tests.perf.fleet_bench --agents 1000 --mocks 100000 --vanish 100  # full
    uv run python -m tests.perf.fleet_bench --agents 50 --mocks 5000 --vanish 5 --ingest-s 10

Everything is private and on 127.0.0.1: a PostgreSQL cluster (initdb on a free
port), a Mosquitto with the password and ACL files ``mockmock mosquitto-config``
writes, ``mockmock serve --replica`` processes and ``tests.perf.fleet_agents``
processes. Each agent is enrolled through the API (its own id and password) and
is a real MQTT connection: presence with a will, reported state, usage records.
For each number of replicas, on a fresh database:

1. **start**: a group of ``--mocks`` across the agents; seconds from the start
   request until every agent reported the revision that carries its range;
2. **ingest**: every agent sends a usage record every ``--burst-s`` for
   ``--ingest-s``; records/s stored (the count in the database), then usage
   stops and the stored count must equal the count sent; meanwhile GET
   /api/v1/groups and /api/v1/agents are timed (p50/p99) and the appliances'
   CPU and RSS sampled;
3. **failover**: the process holding ``--vanish`` agents is killed (-9): their
   wills fire; seconds until none of their ranges is placed on them and every
   agent now carrying a range reported it (the offline grace included, printed
   beside it).

Every wait is bounded; every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg2

from tests.fixtures.mosquitto import find_mosquitto
from tests.fixtures.ports import free_port
from tests.fixtures.postgres import start_private_postgres, temporary_database
from tests.perf.mqtt_bench import QuietMosquitto, raise_fd_limit

HOST = "127.0.0.1"
CLK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def mockmock(*args: str) -> list[str]:
    return [sys.executable, "-m", "appliance.command", *args]


class Proc:
    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.log_path = log_path
        out = open(log_path, "ab")  # noqa: SIM115 - the child owns it
        self.p = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("MOCKMOCK_")},
                 **(env or {})},
        )  # fmt: skip
        out.close()

    def signal(self, sig: int) -> None:
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def cpu_rss(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, RSS in MB) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK
    with open(f"/proc/{pid}/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    return cpu, rss


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, int(len(s) * p / 100 + 0.5) - 1))], 2)


class Api:
    def __init__(self, urls: list[str], token: str) -> None:
        self.clients = [
            httpx.Client(base_url=u, timeout=60, headers={"Authorization": f"Bearer {token}"})
            for u in urls
        ]

    def __call__(self, method: str, path: str, i: int = 0, **kw: Any) -> Any:
        r = self.clients[i % len(self.clients)].request(method, path, **kw)
        if r.status_code >= 400:
            raise SystemExit(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json()


class Phase:
    """One database, ``replicas`` appliances, the agents, the three measurements."""

    def __init__(self, args: argparse.Namespace, work: Path, pg_dsn: str, replicas: int):
        self.args = args
        self.work = work
        self.pg_dsn = pg_dsn
        self.replicas = replicas
        self.stack = contextlib.ExitStack()
        self.result: dict[str, Any] = {"replicas": replicas}

    # ---- set-up -------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        with self.stack:
            self.db_url = self.stack.enter_context(temporary_database(self.pg_dsn))
            self._bus_and_appliances()
            self._agents()
            self.start_group()
            self.ingest()
            self.failover()
        return self.result

    def _mosquitto_config(self, data: Path) -> None:
        done = subprocess.run(
            mockmock("mosquitto-config", "--out", str(self.work / "mq-files"),
                     "--data-dir", str(data), "--db-url", self.db_url),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"mosquitto-config failed: {done.stderr}")

    def _bus_and_appliances(self) -> None:
        datas = [self.work / f"replica{i}" for i in range(self.replicas)]
        for d in datas:  # each replica's bus account, in the password file
            if d != datas[0]:  # replicas share the audit key (appliance.audit.anchor)
                d.mkdir(mode=0o700)
                shutil.copy2(datas[0] / "audit.key", d / "audit.key")
            self._mosquitto_config(d)
        files = self.work / "mq-files"
        self.broker = QuietMosquitto(
            find_mosquitto() or "mosquitto",
            self.work / "mosquitto",
            extra_config=[f"password_file {files / 'passwd'}", f"acl_file {files / 'acl'}",
                          "max_connections -1", "max_queued_messages 0"],
            anonymous=False,
        ).start()  # fmt: skip
        self.stack.callback(self.broker.stop)
        env = {
            "MOCKMOCK_OFFLINE_GRACE_SECONDS": str(self.args.grace_s),
            "MOCKMOCK_LEADER_POLL_SECONDS": "1",
        }
        self.apps: list[Proc] = []
        urls = []
        for i, d in enumerate(datas):
            port = free_port()
            app = Proc(
                mockmock("serve", "--replica", "--data-dir", str(d), "--db-url", self.db_url,
                         "--mqtt-url", f"mqtt://{HOST}:{self.broker.port}",
                         "--http-port", str(port)),
                self.work / f"replica{i}.log", env,
            )  # fmt: skip
            self.stack.callback(app.stop)
            self.apps.append(app)
            urls.append(f"http://{HOST}:{port}")
        for url in urls:

            def healthy(url: str = url) -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return httpx.get(url + "/api/v1/health", timeout=2).json()["bus_connected"]
                return False

            wait(healthy, 60, f"{url} healthy")
        token = (datas[0] / "admin.token").read_text().strip()
        self.api = Api(urls, token)

    def _agents(self) -> None:
        n = self.args.agents
        per_agent = -(-self.args.mocks // (n - self.args.vanish))  # room after the failover
        capacity = max(2 * per_agent, 10)
        t0 = time.monotonic()
        creds = []
        for i in range(n):
            token = self.api("POST", "/api/v1/enrollment-tokens", i)["token"]
            body = {"token": token, "capacity": capacity, "hostname": f"sim-{i}"}
            creds.append(self.api("POST", "/api/v1/agents/enroll", i, json=body))
        self.result["enroll_s"] = round(time.monotonic() - t0, 1)
        self._mosquitto_config(self.work / "replica0")  # now with every agent
        self.broker.proc.send_signal(signal.SIGHUP)  # Mosquitto reloads both files
        time.sleep(1)
        # The vanishing agents get a process of their own; the rest are spread evenly.
        victims, rest = creds[: self.args.vanish], creds[self.args.vanish :]
        procs = max(1, self.args.agent_procs)
        chunks = [victims] + [rest[i::procs] for i in range(procs)]
        self.sims: list[tuple[Proc, Path]] = []
        for i, chunk in enumerate(chunks):
            path = self.work / f"agents{i}.json"
            path.write_text(json.dumps(chunk))
            status = self.work / f"agents{i}.status"
            sim = Proc(
                [sys.executable, "-m", "tests.perf.fleet_agents", str(path), "--host", HOST,
                 "--port", str(self.broker.port), "--status", str(status),
                 "--capacity", str(capacity), "--burst-s", str(self.args.burst_s)],
                self.work / f"agents{i}.log",
            )  # fmt: skip
            self.stack.callback(sim.stop)
            self.sims.append((sim, status))
        self.victim_ids = {c["agent_id"] for c in victims}
        wait(lambda: self.api("GET", "/api/v1/health")["agents_online"] >= n, 120,
             f"{n} agents online")  # fmt: skip
        log(f"{self.replicas} replica(s): {n} agents enrolled and online, capacity {capacity}")

    def statuses(self, live_only: bool = False) -> list[dict[str, Any]]:
        out = []
        for sim, path in self.sims:
            if live_only and sim.p.poll() is not None:
                continue
            with contextlib.suppress(OSError, ValueError):
                out.append(json.loads(path.read_text()))
        return out

    # ---- 1. start a big group -----------------------------------------------------

    def start_group(self) -> None:
        tpl = {
            "transport": {"mqtt": {"url": f"mqtt://{HOST}:9", "topic": "bench/{device_id}"}},
            "interval": "10s",
            "payload": {"seq": {"counter": {}}},
        }
        self.api("PUT", "/api/v1/templates/bench", json=tpl)
        group = {"template": "bench", "count": self.args.mocks, "entitlement": self.args.tier}
        self.api("PUT", "/api/v1/groups/bench", json=group)
        t0 = time.monotonic()
        doc = self.api("POST", "/api/v1/groups/bench/start")
        placed_s = time.monotonic() - t0
        holders = {p["agent_id"] for p in doc["placement"]}

        def reported() -> bool:
            agents = self.api("GET", "/api/v1/agents")
            return all(
                a["reported_revision"] >= a["revision"] for a in agents if a["agent_id"] in holders
            )

        wait(reported, 120, "every agent to report its new revision", every=0.1)
        self.result["start"] = {
            "mocks": self.args.mocks,
            "agents": len(holders),
            "start_request_s": round(placed_s, 2),
            "all_reported_s": round(time.monotonic() - t0, 2),
        }
        log(f"start: {self.result['start']}")

    # ---- 2. sustained usage ingest, API latency, appliance CPU/RSS ------------------

    def _db_count(self) -> int:
        with contextlib.closing(psycopg2.connect(self.db_url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM usagerecord")
            return int(cur.fetchone()[0])

    def ingest(self) -> None:
        latencies: dict[str, list[float]] = {"groups": [], "agents": []}
        stop = threading.Event()

        def poll() -> None:
            i = 0
            while not stop.is_set():
                for name, path in (("groups", "/api/v1/groups"), ("agents", "/api/v1/agents")):
                    t = time.perf_counter()
                    self.api("GET", path, i)
                    latencies[name].append(1000 * (time.perf_counter() - t))
                    i += 1
                stop.wait(self.args.poll_s)

        sent0 = sum(s["usage_sent"] for s in self.statuses())
        count0 = self._db_count()
        cpu0 = [cpu_rss(a.p.pid) for a in self.apps]
        for sim, _ in self.sims:
            sim.signal(signal.SIGUSR1)
        poller = threading.Thread(target=poll, daemon=True)
        t0 = time.monotonic()
        poller.start()
        rss_peak = [0.0] * len(self.apps)
        while time.monotonic() - t0 < self.args.ingest_s:
            time.sleep(1)
            for i, a in enumerate(self.apps):
                rss_peak[i] = max(rss_peak[i], cpu_rss(a.p.pid)[1])
        window = time.monotonic() - t0
        count1 = self._db_count()
        cpu1 = [cpu_rss(a.p.pid) for a in self.apps]
        stop.set()
        poller.join(30)
        for sim, _ in self.sims:
            sim.signal(signal.SIGUSR2)
        time.sleep(1.5)  # the last status files are written
        statuses = self.statuses()
        sent = sum(s["usage_sent"] for s in statuses) - sent0
        sent_total = sum(s["usage_seq"] for s in statuses)  # every record since enrollment
        t_drain = time.monotonic()
        with contextlib.suppress(SystemExit):
            wait(lambda: self._db_count() >= sent_total, 120, "the records sent to be stored", 0.5)
        stored_total = self._db_count()
        self.result["ingest"] = {
            "window_s": round(window, 1),
            "sent": sent,
            "sent_per_s": round(sent / window),
            "stored_in_window_per_s": round((count1 - count0) / window),
            "sent_total": sent_total,
            "stored_total": stored_total,
            "lost": sent_total - stored_total,
            "drain_s": round(time.monotonic() - t_drain, 1),
            "api_ms": {
                name: {"n": len(v), "p50": pct(v, 50), "p99": pct(v, 99), "max": pct(v, 100)}
                for name, v in latencies.items()
            },
            "appliance": [
                {
                    "cpu_percent": round(100 * (c1[0] - c0[0]) / window, 1),
                    "rss_mb": round(c1[1], 1),
                    "rss_peak_mb": round(peak, 1),
                }
                for c0, c1, peak in zip(cpu0, cpu1, rss_peak, strict=True)
            ],
        }
        log(f"ingest: {self.result['ingest']}")

    # ---- 3. agents vanish: their ranges move ----------------------------------------

    def failover(self) -> None:
        victim = self.sims[0][0]
        t0 = time.monotonic()
        victim.p.kill()
        victim.p.wait(10)

        def moved() -> bool:
            doc = self.api("GET", "/api/v1/groups/bench")
            placement = doc["placement"]
            if any(p["agent_id"] in self.victim_ids for p in placement):
                return False
            covered = sum(p["index_end"] - p["index_start"] for p in placement)
            if covered != self.args.mocks:
                return False
            holders = {p["agent_id"] for p in placement}
            agents = self.api("GET", "/api/v1/agents")
            return all(
                a["reported_revision"] >= a["revision"] for a in agents if a["agent_id"] in holders
            )

        wait(moved, self.args.grace_s + 120, "the vanished agents' ranges to run elsewhere")
        total = time.monotonic() - t0
        self.result["failover"] = {
            "vanished": len(self.victim_ids),
            "seconds": round(total, 2),
            "offline_grace_s": self.args.grace_s,
            "beyond_grace_s": round(total - self.args.grace_s, 2),
        }
        log(f"failover: {self.result['failover']}")


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    cluster = start_private_postgres()
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--mocks", type=int, default=100_000)
    parser.add_argument("--vanish", type=int, default=100, help="agents killed in the failover")
    parser.add_argument("--agent-procs", type=int, default=4, help="processes for the others")
    parser.add_argument("--replicas", type=int, action="append", help="default: 1 then 2")
    parser.add_argument("--tier", default="on_demand:cn100000", help="the group's entitlement")
    parser.add_argument("--ingest-s", type=float, default=30.0)
    parser.add_argument("--burst-s", type=float, default=1.0, help="usage interval when ingesting")
    parser.add_argument("--poll-s", type=float, default=0.2, help="API poll pause")
    parser.add_argument("--grace-s", type=int, default=5, help="offline grace before failover")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="work (logs, configs) here, kept afterwards")
    args = parser.parse_args()
    if not 0 < args.vanish < args.agents:
        parser.error("--vanish: must be between 1 and --agents - 1")
    fds = raise_fd_limit()
    log(f"{os.cpu_count()} CPUs, RLIMIT_NOFILE {fds}, load {os.getloadavg()}")
    results = []
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = str(args.keep)
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="mm-fleet-"))
        dsn = stack.enter_context(postgres())
        for replicas in args.replicas or [1, 2]:
            work = Path(tmp) / f"r{replicas}"
            work.mkdir()
            results.append(Phase(args, work, dsn, replicas).run())
    print(json.dumps(results, indent=2))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def table(results: list[dict[str, Any]]) -> str:
    out = ["| figure | " + " | ".join(f"{r['replicas']} replica(s)" for r in results) + " |"]
    out.append("|---|" + "---|" * len(results))

    def row(name: str, get: Callable[[dict[str, Any]], Any]) -> None:
        out.append(f"| {name} | " + " | ".join(str(get(r)) for r in results) + " |")

    def api(r: dict[str, Any], name: str) -> str:
        ms = r["ingest"]["api_ms"][name]
        return f"{ms['p50']} / {ms['p99']}"

    def ingest(r: dict[str, Any]) -> str:
        i = r["ingest"]
        return f"{i['stored_in_window_per_s']:,} ({i['sent_per_s']:,})"

    def appliance(r: dict[str, Any]) -> str:
        return ", ".join(f"{a['cpu_percent']} / {a['rss_mb']}" for a in r["ingest"]["appliance"])

    def failover(r: dict[str, Any]) -> str:
        return f"{r['failover']['seconds']} (grace {r['failover']['offline_grace_s']})"

    row("agents / mocks", lambda r: f"{r['start']['agents']} / {r['start']['mocks']:,}")
    row("start: all agents reported (s)", lambda r: r["start"]["all_reported_s"])
    row("usage stored /s (sent /s)", ingest)
    row("usage lost (sent - stored)", lambda r: r["ingest"]["lost"])
    row("GET /groups p50 / p99 ms", lambda r: api(r, "groups"))
    row("GET /agents p50 / p99 ms", lambda r: api(r, "agents"))
    row("appliance CPU % / RSS MB", appliance)
    row("failover: ranges run elsewhere (s)", failover)
    return "\n".join(out)


if __name__ == "__main__":
    main()
