"""Storage faults under a running daemon: 3 cameras on a 2-second schedule while the storage in
front of it (Azurite, the fake DFS, a directory on a small tmpfs) is stopped, answers 5xx,
resets connections before or after a write, hangs, or runs out of space; then the faults clear
and the daemon is stopped with SIGTERM.

Each case then checks, for every slot from the first one stored to the last one due after the
faults cleared:
  - it is stored exactly once, with the bytes SORACOM served for that camera and moment;
  - SORACOM was asked to export it exactly once (the fake's export_posts);
  - no export journal record (.soracam-lake/exports/) is left for it after SIGTERM;
  - no image was downloaded more often than its export was made (no download faults are
    injected here, so there is no real download failure to retry).
Each case prints a summary table and, on failure, the daemon's log lines about exports,
retries and records.

The storage faults come from tests/fault_proxy.py, an HTTP proxy whose mode the case sets at
run time. Its random choices come from a seeded generator: the seed is printed and
STORAGEFAULT_SEED=N replays them (timing still varies)."""
import base64
import os
import random
import re
import subprocess
import time

from fault_proxy import FaultProxy
from harness import AZURITE_KEY, check, free_port, md5, wait_for
from it_azure import ACCOUNT, dfs
from it_daemon import Proc
from it_fleet import fleet, slots_of
from it_storm import start_azurite

PERIOD_MS = 2000
SCHEDULE = "*/2 * * * * *"
MIX = ["status:503", "reset_before", "reset_after", "status_after:500"]
LOG_WORDS = re.compile(r"exported|again|lost|record|journal|capture failed|ambiguous|"
                       r"outcome unknown|resuming", re.I)


def conn_for(port, dfs_too=False):
    base = "http://127.0.0.1:%d/%s" % (port, ACCOUNT)
    s = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;"
         % (ACCOUNT, AZURITE_KEY, base))
    return s + ("DfsEndpoint=%s;" % base if dfs_too else "")


def seeded(name):
    seed = int(os.environ.get("STORAGEFAULT_SEED", random.randrange(1 << 30)))
    print("    %s: STORAGEFAULT_SEED=%d" % (name, seed))
    return seed


def daemon_env(c, cams, **kw):
    c.fake.config(footage_lag_ms=0, export_delay_ms=250, export_delay_jitter_ms=300)
    base = dict(SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(cams),
                SORACAM_SCHEDULE=SCHEDULE, SORACAM_CAPTURE_DELAY="0",
                SORACAM_EXPORT_TIMEOUT="10s", SORACAM_SHUTDOWN_GRACE="15s")
    base.update(kw)
    return c.env(**base)


def slot_now(offset_ms=0):
    """The newest slot due at now + offset."""
    t = int(time.time() * 1000) + offset_ms
    return t - t % PERIOD_MS


class Sink:
    """How a case reads the storage directly (never through the proxy): state() returns
    ({(device, slot): [md5, ...]}, [journal record names], [partial object names])."""

    def __init__(self, state):
        self.state = state


def blob_sink(container):
    def state():
        stored, records, partial = {}, [], []
        try:
            blobs = list(container.list_blobs(include=["uncommittedblobs"]))
        except Exception as e:
            if "ContainerNotFound" in str(e):
                return stored, records, partial
            raise
        for b in blobs:
            if b.name.startswith(".soracam-lake/exports/"):
                records.append(b.name)
            elif b.name.endswith(".jpg"):
                if not b.size:
                    partial.append(b.name)
                    continue
                (dev, slots), = slots_of([b.name]).items()
                cm = b.content_settings.content_md5
                stored.setdefault((dev, slots[0]), []).append(
                    bytes(cm).hex() if cm else md5(container.download_blob(b.name).readall()))
        return stored, records, partial
    return Sink(state)


def dfs_sink(d, fs):
    def state():
        stored, records, partial = {}, [], []
        for p, v in d.state().get(fs, {}).items():
            if v["kind"] != "file":
                continue
            if p.startswith(".soracam-lake/exports/"):
                records.append(p)
            elif p.endswith(".jpg"):
                if not v["size"]:
                    continue  # a write cut short: counts as absent, by design
                (dev, slots), = slots_of([p]).items()
                cm = v.get("content_md5")
                stored.setdefault((dev, slots[0]), []).append(
                    base64.b64decode(cm).hex() if cm else md5(d.data(fs, p)))
        return stored, records, partial
    return Sink(state)


def dir_sink(out):
    def state():
        stored, records, partial = {}, [], []
        for dirpath, _, fs in os.walk(out):
            for f in fs:
                rel = os.path.relpath(os.path.join(dirpath, f), out)
                if rel.startswith(".soracam-lake/exports/"):
                    if f != ".spare-record.tmp":  # the record file kept for reuse
                        records.append(rel)
                elif f.endswith(".tmp"):
                    partial.append(rel)
                elif f.endswith(".jpg") and not rel.startswith(".soracam-lake/"):
                    (dev, slots), = slots_of([rel]).items()
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        stored.setdefault((dev, slots[0]), []).append(md5(fh.read()))
        return stored, records, partial
    return Sink(state)


def record_slot(name):
    """(device, slot ms) of a journal record .soracam-lake/exports/<device>/<slot>.<rest>."""
    parts = name.split("/")
    m = re.match(r"(\d+)\.", parts[-1])
    return (parts[-2], int(m.group(1))) if m and len(parts) >= 4 else (None, None)


class Case:
    """One daemon through a sequence of storage fault phases, and the judgement after it."""

    def __init__(self, c, name, cams, env, sink):
        self.c, self.name, self.cams, self.env, self.sink = c, name, cams, env, sink
        self.phases = []
        self.d = Proc(c, ["daemon"], env)
        self.first = None
        self.end = None
        self.rc = None
        self.settled = False

    def log(self):
        return self.d.err()

    def start(self):
        """Waits until every camera has a stored slot in fault-free running; the window
        starts at the latest of those first slots."""
        def firsts():
            self.d.dead()
            stored, _, _ = self.sink.state()
            per = {}
            for dev, s in stored:
                per[dev] = min(per.get(dev, s), s)
            return per if len(per) == len(self.cams) else None
        per = wait_for(firsts, 40, "every camera's first stored slot")
        self.first = max(per.values())

    def phase(self, what, seconds, on=None):
        """Runs the daemon for seconds under a fault (on() sets it up); a stretch of time
        to live through, not a synchronisation."""
        if on is not None:
            on()
        t0 = time.monotonic()
        time.sleep(seconds)
        self.d.dead()
        self.phases.append("%s %.0fs" % (what, time.monotonic() - t0))

    def settle(self, extra_slots=3, timeout=45):
        """After the faults clear: the window ends extra_slots after now; waits (bounded)
        until every slot in it is stored, then stops the daemon with SIGTERM. A timeout is
        not fatal here: the judgement names what is missing."""
        time.sleep(extra_slots * PERIOD_MS / 1000.0)
        self.end = slot_now()
        slots = [(d, s) for d in self.cams for s in range(self.first, self.end + 1, PERIOD_MS)]

        def complete():
            self.d.dead()
            stored, _, _ = self.sink.state()
            return all(k in stored for k in slots)
        try:
            wait_for(complete, timeout, "every slot in the window stored")
            self.settled = True
        except AssertionError:
            self.settled = False
        self.rc = self.d.stop(timeout=40)

    def judge(self, faults_seen, min_faults):
        st = self.c.fake.stats()
        stored, records, partial = self.sink.state()
        log = self.log()
        problems = []
        window = [(d, s) for d in self.cams for s in range(self.first, self.end + 1, PERIOD_MS)]
        by_md5 = {e["md5"]: e for e in st["exports"] if e.get("md5")}
        missing = [k for k in window if k not in stored]
        dup_objects = [k for k in window if len(stored.get(k, [])) > 1]
        wrong = []
        for (dev, s), sums in stored.items():
            for h in sums:
                e = by_md5.get(h)
                if e is None or e["deviceId"] != dev or e["time"] != s:
                    wrong.append((dev, s))
        posts = st.get("export_posts", {})
        double = {(dev, int(t)): n for dev, per in posts.items() for t, n in per.items()
                  if n > 1}
        double_in = {k: n for k, n in double.items() if k in set(window)}
        not_once = [k for k in window if k in stored and
                    posts.get(k[0], {}).get(str(k[1]), 0) != 1]
        left = [r for r in records if record_slot(r) in stored]
        exports = [e for e in st["exports"] if e["deviceId"] in self.cams]
        reloaded = [e for e in exports if e.get("downloads", 0) > 1]
        n_exports = len(exports)
        downloads = st.get("image_downloads", 0)
        if self.rc != 0:
            problems.append("the daemon exited %s after SIGTERM" % self.rc)
        if missing:
            problems.append("%d slot(s) of the window not stored: %s" % (
                len(missing), ", ".join("%s@%d" % k for k in missing[:12])))
        if dup_objects:
            problems.append("%d slot(s) stored more than once: %r" % (len(dup_objects),
                                                                       dup_objects[:12]))
        if wrong:
            problems.append("%d object(s) whose bytes are not SORACOM's image of their slot: "
                            "%r" % (len(wrong), wrong[:12]))
        if double:
            problems.append("%d slot(s) exported more than once (%d in the window, %d extra "
                            "exports): %s" % (len(double), len(double_in),
                                              sum(n - 1 for n in double.values()),
                                              ", ".join("%s@%d x%d" % (k[0], k[1], n) for k, n
                                                        in sorted(double.items())[:12])))
        elif not_once:
            problems.append("%d stored slot(s) without exactly one export POST: %r"
                            % (len(not_once), not_once[:12]))
        if left:
            problems.append("%d journal record(s) left after SIGTERM for slots already "
                            "stored (%d pending-): %s" % (
                                len(left), sum(".pending-" in r for r in left),
                                ", ".join(r.split("/", 2)[2] for r in left[:8])))
        if downloads > n_exports or reloaded:
            problems.append("%d image downloads for %d exports; %d export(s) downloaded more "
                            "than once (max %d)" % (downloads, n_exports, len(reloaded),
                                                    max([e["downloads"] for e in reloaded]
                                                        or [0])))
        if partial:
            problems.append("%d partial object(s) left: %r" % (len(partial), partial[:8]))
        rows = [("phases", "; ".join(self.phases)), ("window slots", len(window)),
                ("stored in window", len(window) - len(missing)),
                ("settled before SIGTERM", "yes" if self.settled else "no"),
                ("export POSTs", sum(sum(v.values()) for v in posts.values())),
                ("slots exported twice or more", len(double)),
                ("records left for stored slots", len(left)),
                ("records left in all", len(records)),
                ("image downloads / exports", "%d / %d" % (downloads, n_exports)),
                ("storage faults injected", faults_seen),
                ("daemon exit", self.rc)]
        print("    %s summary" % self.name)
        for k, v in rows:
            print("    | %-30s | %s" % (k, v))
        if problems:
            lines = [ln for ln in log.splitlines() if LOG_WORDS.search(ln)]
            problems.append("daemon log, %d line(s) about exports, retries and records%s:\n"
                            "%s" % (len(lines), " (first 25)" if len(lines) > 25 else "",
                                    "\n".join(lines[:25])))
        check(not problems, "%s:\n%s" % (self.name, "\n".join(problems)))
        check(faults_seen >= min_faults, "only %d storage fault(s) injected, want >= %d: the "
              "case did not test what it says" % (faults_seen, min_faults))

    def abort(self):
        if self.d.p.poll() is None:
            self.d.kill()


def mixed_storm(case, proxy):
    """The fault sequence of the 5xx/reset cases: half the requests faulted with a mix of
    503, resets before and after the write and 500 after it; then all 503; then all reset;
    then every request hangs unanswered (reset when the phase ends)."""
    case.phase("clean", 4)
    case.phase("50% mixed", 16, lambda: proxy.set(MIX, p=0.5))
    case.phase("all 503", 8, lambda: proxy.set("status:503"))
    case.phase("all reset_before", 8, lambda: proxy.set("reset_before"))
    case.phase("all hang", 6, lambda: proxy.set("hang"))
    proxy.set("pass")


# ---- the proxy itself ------------------------------------------------------------------

def test_storagefault_proxy_modes_against_azurite(c):
    """Each mode of the fault proxy does what it says, seen by the official SDK and a raw
    client (so the storm cases below test what they claim)."""
    import http.client
    import socket
    from azure.core.exceptions import (HttpResponseError, ServiceRequestError,
                                       ServiceResponseError)
    from azure.storage.blob import BlobServiceClient

    proxy = FaultProxy(c.h.azurite_port, seed=1)
    try:
        svc = BlobServiceClient.from_connection_string(conn_for(proxy.port), retry_total=0)
        cont = svc.get_container_client(c.container)
        cont.create_container()
        direct = c.container_client()
        cont.upload_blob("a", b"x" * 100000)  # pass, Content-Length body, keep-alive
        check(direct.get_blob_client("a").download_blob().readall() == b"x" * 100000,
              "pass mode did not forward the write")
        cont.upload_blob("chunked", iter([b"ab", b"cd" * 40000]), length=None)
        check(direct.get_blob_client("chunked").download_blob().readall()
              == b"ab" + b"cd" * 40000, "a chunked body was not forwarded")
        check(cont.get_blob_client("a").get_blob_properties().size == 100000, "HEAD failed")

        proxy.set("status:503")
        try:
            cont.upload_blob("b", b"y")
            check(False, "status:503 did not fail the write")
        except HttpResponseError as e:
            check(e.status_code == 503, "want 503, got %s" % e.status_code)
        check("b" not in [b.name for b in direct.list_blobs()], "status:503 forwarded")

        proxy.set("reset_before")
        try:
            cont.upload_blob("c", b"z")
            check(False, "reset_before did not fail the write")
        except (ServiceRequestError, ServiceResponseError):
            pass
        check("c" not in [b.name for b in direct.list_blobs()], "reset_before forwarded")

        proxy.set("reset_after")
        try:
            cont.upload_blob("d", b"w")
            check(False, "reset_after did not fail the write")
        except (ServiceRequestError, ServiceResponseError):
            pass
        check("d" in [b.name for b in direct.list_blobs()], "reset_after did not forward")

        proxy.set("status_after:500")
        try:
            cont.upload_blob("e", b"v")
            check(False, "status_after:500 did not fail the write")
        except HttpResponseError as e:
            check(e.status_code == 500, "want 500, got %s" % e.status_code)
        check("e" in [b.name for b in direct.list_blobs()], "status_after did not forward")

        proxy.set("hang")
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        s.sendall(b"HEAD /devstoreaccount1/%s/a HTTP/1.1\r\nHost: x\r\n\r\n"
                  % c.container.encode())
        s.settimeout(1.0)
        try:
            got = s.recv(100)
            check(False, "hang answered %r" % got)
        except socket.timeout:
            pass
        proxy.set("pass")  # the hung request's connection is dropped, nothing forwarded
        s.settimeout(5)
        try:
            check(s.recv(100) == b"", "a hung connection answered after the mode changed")
        except ConnectionResetError:
            pass
        s.close()

        proxy.set("down")
        try:
            socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
            check(False, "down mode accepted a connection")
        except ConnectionRefusedError:
            pass
        proxy.set("pass")
        h = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        for _ in range(3):  # keep-alive: several requests on one connection, HEAD included
            h.request("HEAD", "/devstoreaccount1/%s/a" % c.container)
            r = h.getresponse()
            r.read()
            check(r.status in (200, 403), "HEAD through the proxy: %s" % r.status)
        h.close()

        proxy.set(["status:503", "pass"], p=0.5)
        for i in range(40):
            try:
                cont.get_blob_client("a").get_blob_properties()
            except HttpResponseError:
                pass
        n = proxy.stats()["faults"].get("status:503", 0)
        check(5 <= n <= 35, "p=0.5 over a mix with pass faulted %d of 40" % n)
    finally:
        proxy.stop()
    check(not proxy.threads and not proxy.socks, "the proxy left threads or sockets behind")


# ---- Azure Blob ------------------------------------------------------------------------

def test_storagefault_blob_storage_down_and_restarted(c):
    """Azurite unreachable twice mid-run: the proxy refusing connections, then Azurite itself
    stopped and started again on the same port with the same data."""
    from azure.storage.blob import BlobServiceClient
    cams = fleet(c, 3)
    seed = seeded("storage down and restarted, Azure Blob")
    port = free_port()
    location = os.path.join(c.tmp, "azurite-data")
    os.makedirs(location)
    state = {"azurite": start_azurite(c, port, location)}
    proxy = FaultProxy(port, seed=seed)
    container = BlobServiceClient.from_connection_string(conn_for(port)).get_container_client(
        c.container)
    case = Case(c, "storage down and restarted, Azure Blob", cams,
                daemon_env(c, cams, AZURE_STORAGE_CONNECTION_STRING=conn_for(proxy.port)),
                blob_sink(container))
    downs = 0
    try:
        case.start()
        case.phase("clean", 4)
        case.phase("proxy down", 12, lambda: proxy.set("down"))
        downs += 1
        case.phase("clean", 6, lambda: proxy.set("pass"))

        def stop_azurite():
            state["azurite"].stop()
        case.phase("Azurite stopped", 12, stop_azurite)
        downs += 1
        state["azurite"] = start_azurite(c, port, location)
        case.settle()
        print("    proxy: %r" % proxy.stats())
        case.judge(downs + proxy.total_faults() + proxy.stats()["upstream_errors"], 2)
    finally:
        case.abort()
        proxy.stop()
        state["azurite"].stop()


def test_storagefault_blob_5xx_and_resets(c):
    from azure.storage.blob import BlobServiceClient
    cams = fleet(c, 3)
    seed = seeded("5xx and resets, Azure Blob")
    proxy = FaultProxy(c.h.azurite_port, seed=seed)
    container = BlobServiceClient.from_connection_string(
        conn_for(c.h.azurite_port)).get_container_client(c.container)
    case = Case(c, "5xx and resets, Azure Blob", cams,
                daemon_env(c, cams, AZURE_STORAGE_CONNECTION_STRING=conn_for(proxy.port)),
                blob_sink(container))
    try:
        case.start()
        mixed_storm(case, proxy)
        case.settle()
    finally:
        case.abort()
        proxy.stop()
    print("    proxy: %r" % proxy.stats())
    case.judge(proxy.total_faults(), 30)


# ---- ADLS Gen2 (the fake DFS) ------------------------------------------------------------

def test_storagefault_dfs_5xx_and_resets(c):
    cams = fleet(c, 3)
    d = dfs(c)
    seed = seeded("5xx and resets, DFS")
    proxy = FaultProxy(d.port, seed=seed)
    case = Case(c, "5xx and resets, DFS", cams,
                daemon_env(c, cams, AZURE_STORAGE_API="dfs",
                           AZURE_STORAGE_CONNECTION_STRING=conn_for(proxy.port, dfs_too=True)),
                dfs_sink(d, c.container))
    try:
        case.start()
        mixed_storm(case, proxy)
        case.settle()
    finally:
        case.abort()
        proxy.stop()
    print("    proxy: %r" % proxy.stats())
    case.judge(proxy.total_faults(), 30)


# ---- a full file system under the directory sink ------------------------------------------

def test_storagefault_dir_sink_full_file_system(c):
    """The directory sink on a 128 MiB tmpfs (room for the run's real-size images), filled
    with a ballast file so every write fails with ENOSPC for 20 s, then the ballast removed."""
    cams = fleet(c, 3)
    out = os.path.join(c.tmp, "lake")
    os.makedirs(out)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128m,mode=0700", "tmpfs", out],
                       capture_output=True, timeout=20)
    check(p.returncode == 0, "this case needs to mount a tmpfs (root): %s"
          % p.stderr.decode(errors="replace").strip())
    ballast = os.path.join(out, "ballast")
    case = None
    try:
        case = Case(c, "full file system, directory sink", cams,
                    daemon_env(c, cams, AZURE_STORAGE_CONNECTION_STRING=None,
                               AZURE_STORAGE_CONTAINER_NAME=None, SORACAM_SINK="dir:" + out),
                    dir_sink(out))
        case.start()
        case.phase("clean", 4)
        enospc = {"n": 0}

        def fill():
            with open(ballast, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError as e:
                    check(e.errno == 28, "filling the tmpfs: %s" % e)
                    enospc["n"] += 1
            st = os.statvfs(out)
            check(st.f_bavail * st.f_frsize < 65536, "the tmpfs still has room")
        case.phase("file system full", 20, fill)
        os.unlink(ballast)
        case.settle()
        case.judge(enospc["n"], 1)
    finally:
        if case is not None:
            case.abort()
        if os.path.exists(ballast):
            os.unlink(ballast)
        subprocess.run(["umount", "-l", out], capture_output=True, timeout=20)
