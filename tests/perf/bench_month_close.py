"""Benchmark: the month close for N orgs with usage, on SQLite or PostgreSQL. Prints seconds.

    uv run python -m tests.perf.bench_month_close --orgs 10000
    uv run python -m tests.perf.bench_month_close --orgs 10000 --pg   # a private PostgreSQL

Each org has two On-Demand intervals and one flat-plan start in October 2026;
the close (the same ``service.close_due`` the scheduler calls) drafts one
invoice per org in batches, each batch one transaction, with an audit entry per org.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from appliance import db, models
from appliance.entitlements.models import EntitlementInterval
from appliance.invoices import service
from appliance.invoices.context import Billing
from appliance.invoices.models import Invoice
from appliance.schedule import clock

TOKYO = ZoneInfo("Asia/Tokyo")


def seed(orgs: int) -> None:
    start = dt.datetime(2026, 10, 1, tzinfo=TOKYO).astimezone(dt.UTC).replace(tzinfo=None)
    registered = dt.datetime(2026, 10, 1)  # so only October is due
    with db.database.atomic():
        for i in range(orgs):
            org = models.Org.create(
                name=f"org-{i:05d}",
                currency="JPY",
                timezone="Asia/Tokyo",
                registered_at=registered,
            )
            rows = [
                dict(
                    org=org.id,
                    kind="on_demand",
                    item="cn10",
                    capacity=10,
                    group_id=i,
                    run_id=1,
                    start=start + dt.timedelta(days=2),
                    end=start + dt.timedelta(days=2, hours=3),
                ),
                dict(
                    org=org.id,
                    kind="on_demand",
                    item="cn100",
                    capacity=100,
                    group_id=i,
                    run_id=2,
                    start=start + dt.timedelta(days=9),
                    end=start + dt.timedelta(days=9, minutes=95),
                ),
                dict(
                    org=org.id,
                    kind="flat",
                    item="flat10-30d",
                    capacity=10,
                    window_id=i,
                    start=start + dt.timedelta(days=15),
                    end=start + dt.timedelta(days=45),
                ),
            ]
            EntitlementInterval.insert_many(rows).execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--pg", action="store_true", help="on a private PostgreSQL (initdb on a free port)"
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        if args.pg:
            from tests.fixtures.postgres import start_private_postgres, temporary_database

            cluster = start_private_postgres()
            stack.callback(cluster.stop)
            url = stack.enter_context(temporary_database(cluster.dsn))
        else:
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        db.connect(url)
        stack.callback(db.database.close)
        db.migrate()
        seed(args.orgs)
        clock.travel_to(dt.datetime(2026, 11, 1, 0, 6, tzinfo=TOKYO))
        cfg = Billing(batch=args.batch)
        t0 = time.perf_counter()
        report = service.close_due(cfg)
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = service.close_due(cfg)
        rerun = time.perf_counter() - t1
        assert report.invoices == args.orgs, report
        assert again.closed == 0 and Invoice.select().count() == args.orgs
        print(
            json.dumps(
                {
                    "database": url.split(":", 1)[0],
                    "orgs": args.orgs,
                    "batch": args.batch,
                    "seconds": round(seconds, 2),
                    "orgs_per_s": round(args.orgs / seconds),
                    "rerun_seconds": round(rerun, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
