"""The engine on a virtual clock with a recording sender: timing, statuses,
faults and commands, with no broker and no waiting."""

from __future__ import annotations

import asyncio
import itertools
import statistics
from typing import Any

import orjson
import pytest

from agent.engine import GroupRunner
from agent.transports.base import SenderOptions
from tests.perf.hotpath import assignment

T0 = 1_800_000_000.0  # a Friday, 08:00 UTC


class FakeSender:
    """Records what the engine asks of the wire."""

    last_error = ""
    errors = 0

    def __init__(self, device_ids: list[str], options: SenderOptions, clock: Any) -> None:
        self.device_ids = device_ids
        self.options = options
        self.clock = clock
        self.sent: list[tuple[float, int, str, bytes, int | None]] = []
        self.drops: list[tuple[float, int]] = []
        self.reconnects: list[tuple[float, int]] = []
        self.down: set[int] = set()

    async def open(self) -> None:
        pass

    def send(self, slot: int, topic: str, payload: bytes, *, qos: int | None = None) -> bool:
        assert slot not in self.down, "the engine sent through a dropped connection"
        self.sent.append((self.clock(), slot, topic, payload, qos))
        return True

    def is_connected(self, slot: int) -> bool:
        return slot not in self.down

    def drop(self, slot: int) -> None:
        self.down.add(slot)
        self.drops.append((self.clock(), slot))

    async def reconnect(self, slot: int) -> bool:
        self.down.discard(slot)
        self.reconnects.append((self.clock(), slot))
        return True

    async def close(self) -> None:
        pass

    def payloads(self, slot: int | None = None) -> list[Any]:
        return [orjson.loads(p) for _, s, _, p, _ in self.sent if slot is None or s == slot]


class Sim:
    def __init__(self, tpl: dict[str, Any], *, count: int = 1, seed: int | None = 1) -> None:
        self.now = T0
        a = assignment(tpl, count=count, seed=seed)
        self.runner = GroupRunner(a, sender_factory=self._factory, clock=lambda: self.now)
        self.runner.begin(self.now)

    def _factory(self, tpl: Any, ids: list[str], options: SenderOptions) -> FakeSender:
        self.sender = FakeSender(ids, options, lambda: self.now)
        return self.sender

    async def run(self, seconds: float) -> FakeSender:
        end = self.now + seconds
        heap = self.runner._heap
        while heap and heap[0][0] <= end:
            self.now = max(self.now, heap[0][0])
            self.runner.fire(self.now)
            await asyncio.sleep(0)  # reconnect tasks
        self.now = end
        return self.sender


def tpl(**extra: Any) -> dict[str, Any]:
    return {
        "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1", "topic": "t/{device_id}"}},
        "interval": extra.pop("interval", "1s"),
        "payload": extra.pop("payload", {"n": {"counter": {"start": 1}}}),
        **extra,
    }


async def test_sends_on_schedule_and_measures_lateness() -> None:
    sim = Sim(tpl(), count=4)
    sender = await sim.run(9.99)
    assert len(sender.sent) == 40
    starts = sorted(t - T0 for t, *_ in sender.sent[:4])
    assert starts == [0.0, 0.25, 0.5, 0.75]  # staggered over one interval
    rep = sim.runner.report
    assert rep.sent == 40 and rep.lateness.count == 40 and rep.lateness.max_us == 0


async def test_ramp_up_spreads_first_sends() -> None:
    sim = Sim(tpl(interval="10s", ramp_up="20s"), count=10)
    sender = await sim.run(19.99)
    assert [t - T0 for t, *_ in sender.sent[:4]] == [0.0, 2.0, 4.0, 6.0]
    assert sorted({s for _, s, *_ in sender.sent}) == list(range(10))


async def test_bursts_add_messages_sent_together() -> None:
    sim = Sim(tpl(interval="10s", burst={"count": 3, "every": "5s"}), count=2)
    sender = await sim.run(19.99)
    times = [t - T0 for t, s, *_ in sender.sent if s == 0]
    # Regular sends at 0, 10; bursts of three at 2.5, 7.5, 12.5, 17.5.
    assert times == [0.0, 2.5, 2.5, 2.5, 7.5, 7.5, 7.5, 10.0] + [12.5] * 3 + [17.5] * 3
    assert sender.payloads(0)[-1] == {"n": 14}  # one counter across both


async def test_poisson_arrivals_have_the_interval_as_mean_gap() -> None:
    sim = Sim(tpl(arrival="poisson"), count=1)
    sender = await sim.run(3000)
    times = [t for t, *_ in sender.sent]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.fmean(gaps) == pytest.approx(1.0, rel=0.08)
    assert statistics.stdev(gaps) == pytest.approx(1.0, rel=0.12)


async def test_windows_send_only_inside_cron_minutes() -> None:
    sim = Sim(tpl(interval="60s", windows=["0-29 * * * *"]), count=1)
    sender = await sim.run(2 * 3600)
    minutes = {int((t % 3600) // 60) for t, *_ in sender.sent}
    assert minutes == set(range(30))
    assert sim.runner.report.skipped == 60


async def test_status_after_timer_silent_status_and_shorter_interval() -> None:
    sim = Sim(
        tpl(
            interval="10s",
            payload={"s": "ok"},
            statuses={
                "normal": {},
                "offline": {"silent": True},
                "fast": {"interval": "1s", "payload": {"s": "fast"}},
            },
            transitions=[
                {"from": "normal", "to": "offline", "after": "25s"},
                {"from": "offline", "to": "fast", "after": "30s"},
            ],
        )
    )
    sender = await sim.run(60)
    got = [(round(t - T0, 1), orjson.loads(p)["s"]) for t, _, _, p, _ in sender.sent]
    assert got[:3] == [(0.0, "ok"), (10.0, "ok"), (20.0, "ok")]
    # Offline 25-55 s: nothing. Then fast, at once rather than after the 10 s wait.
    assert got[3:6] == [(56.0, "fast"), (57.0, "fast"), (58.0, "fast")]
    assert sim.runner.report.statuses == {"normal": 0, "offline": 0, "fast": 1}
    assert sim.runner.report.transitions == 2


async def test_probability_transitions_and_weighted_initial_are_reproducible() -> None:
    doc = tpl(
        payload={"s": "a"},
        statuses={"a": {}, "b": {"payload": {"s": "b"}}},
        initial={"a": 3, "b": 1},
        transitions=[
            {"from": "a", "to": "b", "probability": 0.2},
            {"from": "b", "to": "a", "probability": 0.5},
        ],
    )
    one, two = Sim(doc, count=20, seed=5), Sim(doc, count=20, seed=5)
    s1, s2 = await one.run(30), await two.run(30)
    assert s1.sent == s2.sent
    states = [p["s"] for p in s1.payloads()]
    # Stationary share of b: 0.2 / (0.2 + 0.5) ~ 0.29
    assert 0.2 < states.count("b") / len(states) < 0.38
    other = await Sim(doc, count=20, seed=6).run(30)
    assert other.sent != s1.sent


async def test_tcp_drop_stops_sending_until_reconnected() -> None:
    sim = Sim(
        tpl(faults={"tcp_drop": {"rate": 0.1, "reconnect_after": "5s"}}),
        count=3,
    )
    sender = await sim.run(300)
    assert sender.drops and len(sender.reconnects) >= len(sender.drops) - 3
    for (t_drop, slot), (t_back, slot2) in zip(
        sorted(sender.drops, key=lambda x: (x[1], x[0])),
        sorted(sender.reconnects, key=lambda x: (x[1], x[0])),
        strict=False,
    ):
        assert slot == slot2 and t_back - t_drop == pytest.approx(5.0)
    assert sim.runner.report.faults["tcp_drop"] == len(sender.drops)
    assert sim.runner.report.reconnects == len(sender.reconnects)


async def test_reconnect_storm_drops_at_its_rate_for_its_duration() -> None:
    doc = tpl(
        faults={
            "reconnect_storm": {
                "rate": 4,
                "reconnect_after": "500ms",
                "start_after": "10s",
                "duration": "20s",
            }
        }
    )
    sim = Sim(doc, count=50)
    sender = await sim.run(60)
    times = [t - T0 for t, _ in sender.drops]
    assert len(times) == 80
    assert min(times) == pytest.approx(10.0) and max(times) < 30.0


async def test_commands_reply_after_the_delay_fail_at_their_rate_and_set_status() -> None:
    doc = tpl(
        payload={"s": "ok"},
        statuses={"normal": {}, "updating": {"payload": {"s": "updating"}}},
        commands={
            "topic": "t/{device_id}/cmd",
            "reply_after": "2s",
            "fail_rate": 0.3,
            "set_status": "updating",
            "qos": 2,
        },
    )
    sim = Sim(doc, count=1, seed=2)
    sender = sim.sender
    assert sender.options.subscriptions == [["t/g-00000/cmd"]]
    on_message = sender.options.on_message
    assert on_message is not None
    await sim.run(0.5)
    for i in range(200):
        on_message(0, "t/g-00000/cmd", orjson.dumps({"id": i}))
    await sim.run(1.9)
    assert not [m for m in sender.sent if m[2].endswith("/reply")]
    await sim.run(0.2)
    replies = [
        (t, orjson.loads(p), q) for t, _, topic, p, q in sender.sent if topic.endswith("/reply")
    ]
    assert [r["id"] for _, r, _ in replies] == list(range(200))
    assert all(t == pytest.approx(T0 + 2.5) and q == 2 for t, _, q in replies)
    failed = sum(r["status"] == "error" for _, r, _ in replies)
    assert 40 <= failed <= 80
    assert sim.runner.report.statuses == {"normal": 0, "updating": 1}
    await sim.run(1.0)
    assert sender.payloads(0)[-1] == {"s": "updating"}


async def test_value_faults_stay_in_their_lane() -> None:
    payload = {
        "temp": {"uniform": {"min": 10.0, "max": 20.0}},
        "level": {"uniform": {"min": 0, "max": 5}},
        "name": "x",
    }
    doc = tpl(
        interval="10ms",
        payload=payload,
        faults={
            "out_of_range": {"rate": 0.2, "fields": ["temp"]},
            "missing_field": {"rate": 0.1, "fields": ["name"]},
            "wrong_type": {"rate": 0.1, "fields": ["level"]},
        },
    )
    sim = Sim(doc, count=2)
    rows = (await sim.run(20)).payloads()
    faults = sim.runner.report.faults
    outside = [r["temp"] for r in rows if not 10 <= r["temp"] <= 20]
    assert len(outside) == faults["out_of_range"] and 0.15 < len(outside) / len(rows) < 0.25
    assert all(r["temp"] >= 21 or r["temp"] <= 9 for r in [{"temp": t} for t in outside])
    assert sum("name" not in r for r in rows) == faults["missing_field"]
    assert sum(isinstance(r["level"], str) for r in rows) == faults["wrong_type"]


async def test_faults_do_not_change_the_values_a_seed_gives() -> None:
    payload = {"v": {"normal": {"mean": 0, "stddev": 1}}}
    clean = await Sim(tpl(payload=payload), seed=9).run(50)
    noisy = await Sim(tpl(payload=payload, faults={"duplicate": {"rate": 0.5}}), seed=9).run(50)
    dedup = [p for i, p in enumerate(noisy.payloads()) if i == 0 or p != noisy.payloads()[i - 1]]
    assert [p["v"] for p in dedup] == [p["v"] for p in clean.payloads()]


async def test_fault_devices_share_picks_a_seeded_part_of_the_fleet() -> None:
    doc = tpl(
        payload={"ts": {"timestamp": {}}},
        faults={"clock_skew": {"offset": "+1h", "devices": 0.25}},
    )
    sim = Sim(doc, count=200)
    sender = await sim.run(1)
    skewed = {s for t, s, _, p, _ in sender.sent if orjson.loads(p)["ts"] / 1000 - t > 3599}
    assert 30 < len(skewed) < 70


async def test_wills_and_credentials_expand_per_device() -> None:
    doc = tpl(credentials={"username": "{device_id}", "password": "pw-{index}"})
    doc["transport"]["mqtt"]["will"] = {
        "topic": "t/{device_id}/lwt",
        "payload": {"state": "offline"},
        "retain": True,
    }
    sim = Sim(doc, count=2)
    o = sim.sender.options
    assert o.wills == [
        ("t/g-00000/lwt", b'{"state":"offline"}', 1, True),
        ("t/g-00001/lwt", b'{"state":"offline"}', 1, True),
    ]
    assert o.credentials == [("g-00000", "pw-0"), ("g-00001", "pw-1")]
    assert o.subscriptions == [] and o.on_message is None


async def test_a_drop_on_a_shared_connection_silences_every_device() -> None:
    doc = tpl(faults={"tcp_drop": {"rate": 0.05, "reconnect_after": "3s"}})
    doc["transport"]["mqtt"]["connection"] = "shared"
    sim = Sim(doc, count=5)
    sender = await sim.run(200)
    assert sender.drops
    for t_drop, _ in sender.drops:
        t_back = min(t for t, _ in sender.reconnects if t > t_drop)
        assert not [t for t, *_ in sender.sent if t_drop <= t < t_back]


async def test_status_time_sends_and_moves_are_reported() -> None:
    sim = Sim(
        tpl(
            statuses={"normal": {}, "hot": {"interval": "500ms"}},
            transitions=[{"from": "normal", "to": "hot", "after": "4s"}],
        ),
        count=2,
    )
    await sim.run(10)
    sim.runner._status_figures(sim.now)
    rep = sim.runner.report
    # 2 devices x 4 s normal, then 2 x 6 s hot; sends at 1 s, then 0.5 s.
    assert rep.status_seconds == {"normal": pytest.approx(8.0), "hot": pytest.approx(12.0)}
    assert rep.status_sends["normal"] == 8 and 23 <= rep.status_sends["hot"] <= 25
    assert sum(rep.status_sends.values()) == rep.sent
    assert rep.moves == {"normal>hot": 2} and rep.transitions == 2


async def test_clock_faults_are_counted_per_message() -> None:
    sim = Sim(
        tpl(
            payload={"ts": {"timestamp": {}}},
            faults={"clock_skew": {"offset": "5s"}, "clock_drift": {"ppm": 100}},
        ),
        count=2,
    )
    await sim.run(4.99)
    assert sim.runner.report.faults == {"clock_skew": 10, "clock_drift": 10}


async def test_error_replies_are_counted_apart() -> None:
    sim = Sim(tpl(commands={"topic": "c/{device_id}", "fail_rate": 0.5, "reply_after": 0}))
    for _ in range(40):
        sim.runner._on_message(0, "c/g-00000", b'{"id": 1}')
    await sim.run(1)
    rep = sim.runner.report
    assert rep.commands == rep.replies == 40
    assert 5 < rep.replies_error < 35
