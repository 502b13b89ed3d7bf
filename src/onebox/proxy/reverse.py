"""The reverse-proxy plane: gives every machine a URL by name over HTTP and HTTPS. nginx
does the proxying (a child process of the gateway); this plane turns each snapshot of
the lab's machines into nginx configuration, certificates from the lab CA, and error
pages, checks them with `nginx -t`, and reloads. A configuration nginx refuses is
logged and dropped: the last good one keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections.abc import Sequence
from pathlib import Path

from onebox.errors import OperationFailed
from onebox.gateway.settings import Settings
from onebox.gateway.watcher import MachineView
from onebox.proxy import ca, nginx

log = logging.getLogger(__name__)

RUN_DIR = Path("/run/onebox/nginx")
NGINX = "nginx"
STOP_SECONDS = 5.0
START_SECONDS = 10.0

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")


def url_name(domain: str, url: str) -> str | None:
    """The fully qualified name for one `--url` value, or None when it is no host name.
    A name outside the lab domain counts as relative to it, as the lab's DNS has it."""
    text = url.strip().lower()
    for scheme in ("http://", "https://"):
        text = text.removeprefix(scheme)
    text = text.rstrip("/").rstrip(".")
    if text != domain and not text.endswith(f".{domain}"):
        text = f"{text}.{domain}"
    if len(text) > 253 or not _HOSTNAME.fullmatch(text):
        return None
    return text


def site_names(
    domain: str, views: Sequence[MachineView]
) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Each machine's names, machine name first, and the URL names skipped, each with why.
    A machine's own name always wins; a URL name that two machines claim goes to the
    first by name."""
    skipped: list[str] = []
    ordered = sorted(views, key=lambda view: view.name)
    taken = {f"{view.name}.{domain}": view.name for view in ordered}
    names: dict[str, list[str]] = {view.name: [f"{view.name}.{domain}"] for view in ordered}
    for view in ordered:
        for url in view.urls:
            name = url_name(domain, url)
            if name is None:
                skipped.append(f"machine '{view.name}' asks for URL {url!r}, no host name")
                continue
            owner = taken.setdefault(name, view.name)
            if owner != view.name:
                skipped.append(f"URL {name} of machine '{view.name}' belongs to '{owner}'")
                continue
            if name not in names[view.name]:
                names[view.name].append(name)
    return {machine: tuple(found) for machine, found in names.items()}, skipped


class ReverseProxyPlane:
    """nginx on ports 80 and 443 of the gateway, following the lab's machines."""

    name = "reverse-proxy"

    def __init__(
        self,
        settings: Settings,
        run_dir: Path = RUN_DIR,
        binary: str = NGINX,
        http_port: int = 80,
        https_port: int = 443,
    ) -> None:
        self.settings = settings
        self.http_port = http_port
        self.https_port = https_port
        self.run_dir = run_dir
        self.binary = binary
        self.authority: ca.Authority | None = None
        self.process: asyncio.subprocess.Process | None = None
        self._applied: dict[str, str] = {}
        self._leaves: dict[tuple[str, ...], ca.LeafFiles] = {}
        self._wanted: list[MachineView] = []
        self._skipped: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    @property
    def conf(self) -> Path:
        return self.run_dir / "nginx.conf"

    async def start(self) -> None:
        s = self.settings
        self.authority = await asyncio.to_thread(
            ca.ensure_authority, Path(s.data_dir), s.lab, s.domain
        )
        (self.run_dir / nginx.PAGES).mkdir(parents=True, exist_ok=True)
        (self.run_dir / "tmp").mkdir(exist_ok=True)
        if not await self._apply([]):
            raise OperationFailed(
                "nginx refused the reverse proxy's first configuration",
                "see the gateway's log (`docker logs` on the gateway)",
            )
        await self._spawn()
        self._tasks = [asyncio.create_task(self._follow()), asyncio.create_task(self._watch())]

    def update(self, views: list[MachineView]) -> None:
        self._wanted = views
        self._wake.set()

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests in flight
        try:
            await asyncio.wait_for(self.process.wait(), STOP_SECONDS)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    # -- configuration -------------------------------------------------------------

    def _layout(self, default: ca.LeafFiles) -> nginx.Layout:
        s = self.settings
        return nginx.Layout(
            lab=s.lab,
            domain=s.domain,
            run_dir=str(self.run_dir),
            default_cert=str(default.cert),
            default_key=str(default.key),
            host_http_port=s.ports.get("http", 0),
            host_https_port=s.ports.get("https", 0),
            http_port=self.http_port,
            https_port=self.https_port,
        )

    def _leaf(self, names: tuple[str, ...]) -> ca.LeafFiles:
        assert self.authority is not None
        if names not in self._leaves:
            self._leaves[names] = self.authority.ensure_leaf(names)
        return self._leaves[names]

    def _render(self, views: list[MachineView]) -> dict[str, str]:
        """Runs in a worker thread: issuing certificates and reading them is file work."""
        domain = self.settings.domain
        by_name = {view.name: view for view in views}
        sites = []
        found, skipped = site_names(domain, views)
        for reason in sorted(set(skipped) - self._skipped):
            log.warning("Skipped a URL name: %s", reason)
        self._skipped = set(skipped)
        for machine, names in found.items():
            view = by_name[machine]
            leaf = self._leaf(names)
            upstream = f"{view.ip}:{view.web_port}" if view.running else None
            sites.append(
                nginx.Site(
                    machine=machine,
                    names=names,
                    upstream=upstream,
                    web_port=view.web_port,
                    cert=str(leaf.cert),
                    key=str(leaf.key),
                )
            )
        default = self._leaf((f"gateway.{domain}", domain))
        return nginx.render(self._layout(default), sites)

    async def _apply(self, views: list[MachineView]) -> bool:
        """Renders, checks and installs a configuration; False when nginx refused it."""
        files = await asyncio.to_thread(self._render, views)
        if files == self._applied:
            return True
        staged = self.run_dir / "nginx.conf.new"
        staged.write_text(files["nginx.conf"])
        checked = await asyncio.create_subprocess_exec(
            self.binary,
            "-t",
            "-q",
            "-e",
            "stderr",
            "-c",
            str(staged),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, errors = await checked.communicate()
        if checked.returncode != 0:
            log.warning(
                "nginx refused the new configuration, so the last good one keeps " "serving: %s",
                errors.decode(errors="replace").strip(),
            )
            return False
        for relative, text in files.items():
            if relative != "nginx.conf":
                (self.run_dir / relative).write_text(text)
        staged.replace(self.conf)
        self._prune_pages(files)
        self._applied = files
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGHUP)
        log.info("Reverse proxy serves %d machines", len(views))
        return True

    def _prune_pages(self, files: dict[str, str]) -> None:
        for page in (self.run_dir / nginx.PAGES).glob("*.html"):
            if f"{nginx.PAGES}/{page.name}" not in files:
                page.unlink(missing_ok=True)

    async def _follow(self) -> None:
        """Applies the newest snapshot; snapshots that arrive meanwhile fold into one."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._apply(self._wanted)
            except Exception:
                log.exception("The reverse proxy could not follow the lab's machines")

    # -- the nginx process ---------------------------------------------------------

    async def _spawn(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.binary,
            "-e",
            "stderr",
            "-c",
            str(self.conf),
            "-g",
            "daemon off;",
            stdin=asyncio.subprocess.DEVNULL,
        )
        await self._wait_listening()

    async def _wait_listening(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_SECONDS
        while True:
            assert self.process is not None
            if self.process.returncode is not None:
                raise OperationFailed(
                    f"nginx exited with code {self.process.returncode} at start",
                    "see the gateway's log; another program may hold port 80 or 443",
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.http_port)
            except OSError:
                if loop.time() > deadline:
                    raise OperationFailed(
                        f"nginx did not open port {self.http_port}", "see the gateway's log"
                    ) from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def _watch(self) -> None:
        """Starts nginx again if it dies: the URLs must not go away with one crash."""
        while not self._closing:
            assert self.process is not None
            code = await self.process.wait()
            if self._closing:
                return
            log.warning("nginx exited with code %s; starting it again", code)
            await asyncio.sleep(1.0)
            try:
                await self._spawn()
            except OperationFailed as exc:
                log.warning("nginx did not start again (%s); retrying", exc.message)
