"""localstripe for ``mockmock up``'s demo mode (and the tests): Stripe test mode offline.

Started from Python, not its CLI: the CLI binds every interface and keeps its
state in a fixed /tmp file shared by everyone on the machine. Here the aiohttp
app is served on 127.0.0.1 in a child process, with its state file in the data
directory, so a demo's customers and payments survive a restart.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.child_process import die_with_parent

HOST = "127.0.0.1"
SECRET_KEY = "sk_test_mockmock_localstripe"
PUBLISHABLE_KEY = "pk_test_mockmock_localstripe"

# Runs in the child: redirect the store's pickle to argv[1], serve on argv[2].
SERVER = """
import pickle, sys
from aiohttp import web
from localstripe import resources
from localstripe.server import app

path, port = sys.argv[1], int(sys.argv[2])

def load(self):
    try:
        with open(path, "rb") as f:
            old = pickle.load(f)
    except FileNotFoundError:
        return
    self.clear()
    self.update(old)

def dump(self):
    with open(path, "wb") as f:
        pickle.dump(dict(self), f, protocol=pickle.HIGHEST_PROTOCOL)

resources.Store.try_load_from_disk = load
resources.Store.dump_to_disk = dump
resources.store.try_load_from_disk()
web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
"""


def available() -> bool:
    """localstripe is a development dependency: absent from a production install."""
    return importlib.util.find_spec("localstripe") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class LocalStripe:
    port: int
    state_file: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def js_url(self) -> str:
        return f"{self.url}/js.stripe.com/v3/"

    def start(self, timeout: float = 20) -> LocalStripe:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(self.state_file), str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),  # a kill -9 of `mockmock up` leaves none behind
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"localstripe exited at start; see {self.log_path}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex((HOST, self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"localstripe did not listen on {self.url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Any:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {SECRET_KEY}"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body.strip() else None

    def send_webhooks_to(self, url: str, secret: str, name: str = "mockmock") -> None:
        """Have localstripe POST signed events to ``url`` (it signs with ``secret``)."""
        self.request("POST", f"/_config/webhooks/{name}", {"url": url, "secret": secret})


def start_demo(data_dir: Path) -> tuple[LocalStripe, dict[str, str]]:
    """localstripe for the demo, and the settings that point the appliance at it."""
    stripe_dir = data_dir / "localstripe"
    stripe_dir.mkdir(parents=True, exist_ok=True)
    secret_file = stripe_dir / "webhook.secret"
    if not secret_file.exists():
        secret_file.touch(mode=0o600)
        secret_file.write_text("whsec_" + secrets.token_hex(16))
    ls = LocalStripe(_free_port(), stripe_dir / "state.pickle", stripe_dir / "localstripe.log")
    ls.start()
    return ls, {
        "stripe_api_key": SECRET_KEY,
        "stripe_publishable_key": PUBLISHABLE_KEY,
        "stripe_api_base": ls.url,
        "stripe_js_url": ls.js_url,
        "stripe_webhook_secret": secret_file.read_text().strip(),
    }
