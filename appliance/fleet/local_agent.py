"""The local agent of ``mockmock up``: a child process, run the way a board runs it.

``mockmock up`` enrolls an agent for itself (the one-time-token path a board takes) and
starts ``mockmock-agent run --data-dir DATA/agent``: the agent's loop, its journal fsyncs
and its mocks' sockets stay off uvicorn's event loop, and what runs is what boards run.

The child gets a session of its own, so a terminal's Ctrl-C reaches only ``up``, which
then stops the agent first (its goodbye and last usage go out while the broker is still
up), by PID and with its whole process group. On Linux it also dies with ``up``
(``PR_SET_PDEATHSIG``): a ``kill -9`` of the appliance leaves no agent running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from appliance.child_process import die_with_parent
from appliance.config import Settings

log = logging.getLogger(__name__)

PID_FILE = "agent.pid"
ONLINE_TIMEOUT_S = 20.0
"""``up`` says ready once its agent is online (a group can start), or after this long."""
STOP_TIMEOUT_S = 15.0
"""SIGTERM lets the agent say goodbye and journal its last usage; then SIGKILL."""


def agent_dir(settings: Settings) -> Path:
    return settings.data_dir / "agent"


def prepare_config(settings: Settings) -> Any:
    """Enroll once, reuse the identity across restarts, write what the child will load."""
    from agent.errors import AgentError
    from agent.runtime import AgentConfig
    from appliance.fleet import service as fleet
    from appliance.orgs.service import ensure_demo_org

    org, _ = ensure_demo_org(settings.admin_token_path)
    directory = agent_dir(settings)
    cfg = None
    try:
        known = AgentConfig.load(directory)
        if fleet.agent_by_id(known.agent_id) is not None:
            known.mqtt_url = fleet.public_mqtt_url(settings.bus_url)
            cfg = known
    except AgentError:
        pass
    if cfg is None:
        # The same path as a board: a one-time token traded for an id and bus credentials.
        enrolled = fleet.local_agent(org.id, capacity=20_000, mqtt_url=settings.bus_url)
        cfg = AgentConfig(
            agent_id=enrolled.agent_id,
            mqtt_url=enrolled.mqtt_url,
            username=enrolled.username,
            password=enrolled.password,
            capacity=20_000,
        )
    cfg.appliance_url = settings.url  # its certificates (ca.py); this run's port
    cfg.save(directory)
    return cfg


def command(directory: Path) -> list[str]:
    """``mockmock-agent run`` with this interpreter (the script may not be on PATH)."""
    verbose = ["-v"] if logging.getLogger().isEnabledFor(logging.DEBUG) else []
    return [sys.executable, "-m", "agent.cli", *verbose, "run", "--data-dir", str(directory)]


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class LocalAgent:
    """One ``mockmock-agent run`` child; :meth:`stop` ends it and whatever it started."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.directory / PID_FILE

    def start(self) -> int:
        self.proc = subprocess.Popen(
            command(self.directory),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as one, by PID
            preexec_fn=die_with_parent(),
        )
        fd = os.open(self.pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{self.proc.pid}\n")
        log.info("local agent running as process %d", self.proc.pid)
        return self.proc.pid

    async def wait_online(self, agent_id: str, timeout: float = ONLINE_TIMEOUT_S) -> bool:
        """Until the agent's presence reached the appliance since :meth:`start`."""
        from appliance import models
        from appliance.fleet import service as fleet

        assert self.proc is not None
        since = models.utcnow()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if await _exited(self.proc, 0):
                log.error("the local agent exited at start (see its messages above)")
                return False
            agent = await asyncio.to_thread(fleet.agent_by_id, agent_id)
            if agent is not None and agent.online and agent.last_seen >= since:
                return True
            await asyncio.sleep(0.1)
        log.warning("the local agent is not online after %.0fs; serving without it", timeout)
        return False

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM to the agent's group, SIGKILL after ``timeout``; its exit code."""
        proc = self.proc
        if proc is None:
            return None
        _signal_group(proc.pid, signal.SIGTERM)
        if not await _exited(proc, timeout):
            log.warning("local agent did not stop in %.0fs; killing it", timeout)
        # Not reaped yet (a zombie keeps its PID and group), so this reaches only its group:
        # the agent if it hung, and anything it started and left running.
        _signal_group(proc.pid, signal.SIGKILL)
        code = await asyncio.to_thread(proc.wait)
        self.proc = None
        with contextlib.suppress(OSError):
            self.pid_file.unlink()
        return code


def _gone(proc: subprocess.Popen[bytes]) -> bool:
    if not hasattr(os, "waitid"):  # macOS: poll reaps, the group may then be gone too
        return proc.poll() is not None
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


async def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for the child to exit without reaping it (``WNOWAIT``, where there is one)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if _gone(proc):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)
