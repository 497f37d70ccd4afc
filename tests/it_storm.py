"""Fault and crash storms: the daemon on a one-second schedule for several cameras while the
fake SORACOM API and the storage misbehave, SIGKILLed at random points and restarted each
time. At the end every slot must be stored exactly once with the bytes SORACOM served for it,
or recorded missing with a reason; no export may have been charged twice without a logged
reason; nothing partial or corrupt may exist anywhere. Each storm prints a summary table.

The random choices come from a seeded generator; the seed is printed, and STORM_SEED=N
replays a storm's choices (timing still varies)."""
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time

from harness import (AZURITE_KEY, DEVICES, Failed, HERE, Server, check, free_port,
                     jpeg_comment, md5, port_open, wait_for)
from it_fleet import fleet, slots_of

SORACOM_FAULTS = [
    ("export_post", "status:500"), ("export_post", "status:503"), ("export_post", "ratelimit:1"),
    ("export_post", "reset"), ("export_post", "accept_then:500"),
    ("export_post", "accept_then_reset"), ("export_post", "accept_then:502"),
    ("export_post", "accept_then_delay:4000"),
    ("export_post", "terminal:failed"), ("export_post", "terminal:limitExceeded"),
    ("export_post", "terminal:expired"), ("export_post", "terminal:retrying"),
    ("export_post", "terminal:stuck"),
    ("export_get", "status:500"), ("export_get", "status:503"), ("export_get", "reset"),
    ("export_get", "ratelimit:1"), ("export_get", "delay:1500"), ("export_get", "expire_token"),
    ("export_list", "status:500"), ("export_list", "reset"),
    ("export_list_all", "status:500"), ("export_list_all", "reset"),
    ("export_list_all", "delay:3000"), ("export_list_all", "json:swap_types"),
    ("image", "truncate"), ("image", "not_jpeg"), ("image", "slow_body:1500"),
    ("image", "status:403"), ("image", "reset"), ("image", "status:500"),
    ("auth", "status:500"), ("auth", "reset"), ("token", "status:503"),
    ("any", "expire_token"), ("any", "delay:800"),
]


class Daemon:
    """One soracam-lake daemon process; its log kept under its own name."""

    def __init__(self, c, env, n):
        self.path = os.path.join(c.tmp, "daemon-%02d.log" % n)
        self.f = open(self.path, "wb")
        self.p = subprocess.Popen([c.bin, "daemon"], env=env, stdout=self.f, stderr=self.f,
                                  stdin=subprocess.DEVNULL)

    def log(self):
        with open(self.path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self):
        if self.p.poll() is not None:
            raise Failed("daemon exited by itself (%s):\n%s" % (self.p.returncode,
                                                                self.log()[-3000:]))
        self.p.kill()
        self.p.wait(10)
        self.f.close()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(10)
            raise Failed("daemon did not stop within 60s of SIGTERM")
        self.f.close()
        return rc


class Storm:
    """Drives one storm and judges its outcome."""

    def __init__(self, c, name, cams):
        self.c = c
        self.name = name
        self.cams = cams
        seed = int(os.environ.get("STORM_SEED", random.randrange(1 << 30)))
        print("    %s: STORM_SEED=%d" % (name, seed))
        self.rng = random.Random(seed)
        self.kills = 0
        self.runs = 0
        self.logs = []
        self.storage_faults = 0

    def soracom_faults(self, n):
        rules = []
        for _ in range(n):
            op, action = self.rng.choice(SORACOM_FAULTS)
            rule = {"op": op, "action": action, "count": self.rng.randint(1, 2),
                    "after": self.rng.randint(0, 4)}
            if op not in ("auth", "token", "any", "export_list_all") and self.rng.random() < 0.7:
                rule["device"] = self.rng.choice(self.cams)
            rules.append(rule)
        self.c.fake.faults(*rules)

    def start(self, env):
        d = Daemon(self.c, env, self.runs)
        self.runs += 1
        self.logs.append(d)
        return d

    def kill_cycles(self, env, n, between=None, during=None):
        """n times: start the daemon, let it work a random while, SIGKILL it. between(i) runs
        before each start, during(i) at a random point of each run."""
        for i in range(n):
            self.soracom_faults(self.rng.randint(2, 5))
            if between:
                between(i)
            d = self.start(env)
            # Random kill points, not synchronisation: the daemon must survive any.
            t = self.rng.uniform(0.2, 2.2)
            if during:
                wait_for(lambda: "daemon started" in d.log() or d.p.poll() is not None, 20,
                         "the daemon to start")
                cut = self.rng.uniform(0, t)
                time.sleep(cut)
                during(i)
                t -= cut
            time.sleep(t)
            d.kill()
            self.kills += 1

    def all_logs(self):
        return "".join(d.log() for d in self.logs)


def billed(e):
    """Whether the fake charged this export (it produced an image URL)."""
    return e["status"] == "completed" or (e["status"] == "expired" and not e.get("reason"))


def judge(storm, first_ms, end_ms, stored, missing_reasons, leftovers, min_soracom_faults=20,
          min_storage_faults=0):
    """Checks the storm's outcome and prints the summary table.

    stored: {(device, slot ms): [bytes, ...]} of every image object; missing_reasons:
    {(device, slot ms): [reason, ...]} from the no-footage markers; leftovers: names of
    temporary or partial objects found."""
    st = storm.c.fake.stats()
    logs = storm.all_logs()
    exports = {}
    for e in st["exports"]:
        exports.setdefault((e["deviceId"], e["time"]), []).append(e)
    by_md5 = {e["md5"]: e for e in st["exports"] if e.get("md5")}
    problems = []
    n_slots = n_stored = n_missing = corrupt = dup_objects = 0
    for dev in storm.cams:
        s = first_ms
        while s <= end_ms:
            n_slots += 1
            objs = stored.get((dev, s), [])
            if len(objs) > 1:
                dup_objects += 1
                problems.append("%s@%d stored %d times" % (dev, s, len(objs)))
            if objs:
                n_stored += 1
            elif len(missing_reasons.get((dev, s), [])) >= 3 and all(
                    missing_reasons[(dev, s)]):
                n_missing += 1
            else:
                problems.append("%s@%d neither stored nor recorded missing (markers %r)"
                                % (dev, s, missing_reasons.get((dev, s))))
            s += 1000
    for (dev, s), objs in stored.items():
        for data in objs:
            e = by_md5.get(md5(data))
            com = jpeg_comment(data) or ""
            if (e is None or e["deviceId"] != dev or e["time"] != s or
                    "device=%s time=%d" % (dev, s) not in com or data[-2:] != b"\xff\xd9"):
                corrupt += 1
                problems.append("%s@%d: stored bytes are not SORACOM's image of that slot (%s)"
                                % (dev, s, com))
    unexplained = 0
    reasons = {}
    posts = sum(sum(v.values()) for v in st["export_posts"].values())
    for (dev, s), es in exports.items():
        paid = [e for e in es if billed(e)]
        if len(paid) <= 1:
            continue
        kept = {by_md5.get(md5(d), {}).get("exportId") for d in stored.get((dev, s), [])}
        for e in paid:
            if e["exportId"] in kept:
                continue
            # A second charge is only acceptable when the program said why the first export
            # could not be used, or that the request's outcome was ambiguous.
            why = re.search(r"capture failed device=%s .*export=%s.*|export %s .*cannot be used.*"
                            % (dev, e["exportId"], e["exportId"]), logs) or re.search(
                r"device=%s: (ambiguous|export request outcome unknown).*" % dev, logs)
            if why:
                reasons[why.group(0).split(": ", 1)[-1][:60]] = reasons.get(
                    why.group(0).split(": ", 1)[-1][:60], 0) + 1
            else:
                unexplained += 1
                problems.append("%s@%d: export %s charged besides the stored one, no reason "
                                "logged" % (dev, s, e["exportId"]))
    problems += ["leftover partial object: %s" % n for n in leftovers]
    rows = [("slots", n_slots), ("stored", n_stored), ("recorded missing", n_missing),
            ("export POSTs", posts), ("charged exports", sum(billed(e) for e in st["exports"]
                                    if first_ms <= e["time"] <= end_ms)),
            ("unexplained double charges", unexplained), ("duplicate objects", dup_objects),
            ("corrupt objects", corrupt), ("partial objects", len(leftovers)),
            ("SORACOM requests", st["requests"]),
            ("SORACOM faults fired", st["faults_fired"]),
            ("storage faults", storm.storage_faults), ("SIGKILLs", storm.kills),
            ("daemon runs", storm.runs)]
    print("    %s summary" % storm.name)
    for k, v in rows:
        print("    | %-28s | %6d |" % (k, v))
    for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print("    second charge, logged reason (%d): %s" % (v, k))
    check(not problems, "%d problem(s):\n%s" % (len(problems), "\n".join(problems[:40])))
    check(n_stored > 0, "nothing stored")
    check(st["faults_fired"] >= min_soracom_faults and storm.storage_faults >= min_storage_faults,
          "too few faults for a storm: %d SORACOM, %d storage" % (st["faults_fired"],
                                                                  storm.storage_faults))


def since_ms(c, list_names):
    """The earliest catch-up horizon recorded in the sink."""
    vals = [int(n.rsplit("/", 1)[1]) for n in list_names(".soracam-lake/since/")]
    check(vals, "no catch-up horizon recorded")
    return min(vals)


def settle(storm, env, complete, timeout=120):
    """Runs the daemon undisturbed until complete() holds; returns the daemon's exit code."""
    storm.c.fake._call("DELETE", "/_fake/faults")
    d = storm.start(env)
    try:
        wait_for(lambda: complete() or d.p.poll() is not None, timeout,
                 "every slot stored or recorded missing")
    finally:
        rc = d.stop()
    return rc


# ---- directory sink: SORACOM faults and SIGKILLs ----------------------------------------

def dir_state(out):
    stored, missing, leftovers = {}, {}, []
    for d, _, fs in os.walk(out):
        for f in fs:
            rel = os.path.relpath(os.path.join(d, f), out)
            if f == ".spare-record.tmp" and rel.startswith(".soracam-lake/exports/"):
                continue  # a removed intent record's file, kept for the next record
            if f.endswith(".tmp") or f.startswith("."):
                leftovers.append(rel)
            elif rel.startswith(".soracam-lake/missing/"):
                dev, name = rel.split("/")[2:4]
                with open(os.path.join(d, f)) as fh:
                    reason = json.load(fh).get("reason", "")
                missing.setdefault((dev, int(name.split(".")[0])), []).append(reason)
            elif f.endswith(".jpg"):
                (dev, slots), = slots_of([rel]).items()
                with open(os.path.join(d, f), "rb") as fh:
                    stored.setdefault((dev, slots[0]), []).append(fh.read())
    return stored, missing, leftovers


def test_storm_soracom_faults_and_sigkills_dir_sink(c):
    cams = fleet(c, 3)
    out = os.path.join(c.tmp, "lake")
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_CONTAINER_NAME=None,
                SORACAM_SINK="dir:" + out, SORACOM_DEVICE_ID=None,
                SORACOM_DEVICE_IDS=",".join(cams), SORACAM_SCHEDULE="* * * * * *",
                SORACAM_CAPTURE_DELAY="0", SORACAM_EXPORT_TIMEOUT="6s",
                SORACAM_SHUTDOWN_GRACE="10s")
    c.fake.config(footage_lag_ms=0, export_delay_ms=250, export_delay_jitter_ms=400,
                  token_ttl_s=600)
    storm = Storm(c, "SORACOM faults + SIGKILL, directory sink", cams)
    first = (int(time.time()) + 1) * 1000

    def between(i):
        # For a few cycles one camera is disconnected: its slots of that time have no footage.
        devs = [{"deviceId": d, "name": "カメラ %d" % k, "connected": not (8 <= i < 11 and k == 2),
                 "powerState": "on"} for k, d in enumerate(cams)]
        c.fake.config(devices=devs)

    storm.kill_cycles(env, 22, between)
    end = int(time.time()) * 1000 - 1000

    def names(prefix):
        base = os.path.join(out, prefix)
        return [prefix + f for f in os.listdir(base)] if os.path.isdir(base) else []

    def done():
        stored, missing, _ = dir_state(out)
        return all((d, s) in stored or len(missing.get((d, s), [])) >= 3
                   for d in cams for s in range(first, end + 1, 1000))

    rc = settle(storm, env, done)
    check(rc == 0, "the last daemon exited %s:\n%s" % (rc, storm.logs[-1].log()[-3000:]))
    horizon = min(int(f) for d in cams
                  for f in os.listdir(os.path.join(out, ".soracam-lake", "since", d)))
    check(horizon <= first + 3000, "catch-up horizon %d lost the first slots (%d)" % (horizon,
                                                                                     first))
    stored, missing, leftovers = dir_state(out)
    judge(storm, max(first, horizon), end, stored, missing, leftovers)


# ---- Azure Blob storage: 500/503 storms, storage restarts, SIGKILLs ------------------------

class FaultProxy:
    """An HTTP/1.1 proxy in front of Azurite that can answer 500/503 instead of forwarding,
    forward and then answer 500 (the write happened: an ambiguous failure), or drop the
    connection; with Azurite stopped, connections are dropped."""

    def __init__(self, upstream_port, rng):
        self.upstream = upstream_port
        self.rng = rng
        self.rate = 0.0
        self.injected = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def close(self):
        self.closed = True
        self.sock.close()

    def accept_loop(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def pick(self):
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            self.injected += 1
            return self.rng.choice(["500", "503", "after500", "drop"])

    def serve(self, conn):
        conn.settimeout(30)
        f = conn.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers = []
                length = 0
                while True:
                    h = f.readline().decode("latin-1")
                    if h in ("\r\n", "\n", ""):
                        break
                    k, v = h.split(":", 1)
                    headers.append((k.strip(), v.strip()))
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                body = f.read(length) if length else b""
                fault = self.pick()
                if fault in ("500", "503"):
                    msg = b"<Error><Code>ServerBusy</Code></Error>"
                    conn.sendall(b"HTTP/1.1 %s Injected\r\nContent-Length: %d\r\n"
                                 b"Content-Type: application/xml\r\n\r\n%s"
                                 % (fault.encode(), len(msg), msg))
                    continue
                if fault == "drop":
                    return
                try:
                    up = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=30)
                    up.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                    for k, v in headers:
                        up.putheader(k, v)
                    up.endheaders(body)
                    r = up.getresponse()
                    data = r.read()
                except OSError:
                    return  # storage down: the client sees the connection dropped
                if fault == "after500":
                    conn.sendall(b"HTTP/1.1 500 Injected\r\nContent-Length: 0\r\n\r\n")
                    continue
                out = ["HTTP/1.1 %d %s\r\n" % (r.status, r.reason)]
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        out.append("%s: %s\r\n" % (k, v))
                out.append("Content-Length: %d\r\n\r\n" % len(data))
                conn.sendall("".join(out).encode("latin-1") + data)
                up.close()
        except (OSError, ValueError):
            return
        finally:
            f.close()
            conn.close()


def start_azurite(c, port, location):
    exe = os.path.join(HERE, "node_modules", ".bin", "azurite-blob")
    srv = Server("azurite-storm-%d" % time.monotonic_ns(),
                 [exe, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
                  location, "--silent", "--skipApiVersionCheck"], c.tmp)
    wait_for(lambda: port_open(port) or not srv.alive(), 60, "Azurite on port %d" % port)
    check(srv.alive(), "Azurite did not start:\n" + srv.tail())
    return srv


def test_storm_storage_faults_restarts_and_sigkills_azure_blob(c):
    from azure.storage.blob import BlobServiceClient
    cams = fleet(c, 2)
    port = free_port()
    location = os.path.join(c.tmp, "azurite-data")
    os.makedirs(location)
    azurite = start_azurite(c, port, location)
    storm = Storm(c, "storage faults + storage restarts + SIGKILL, Azure Blob", cams)
    proxy = FaultProxy(port, storm.rng)
    conn = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;"
            "BlobEndpoint=http://127.0.0.1:%%d/devstoreaccount1;" % AZURITE_KEY)
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=conn % proxy.port, SORACOM_DEVICE_ID=None,
                SORACOM_DEVICE_IDS=",".join(cams), SORACAM_SCHEDULE="* * * * * *",
                SORACAM_CAPTURE_DELAY="0", SORACAM_EXPORT_TIMEOUT="6s",
                SORACAM_SHUTDOWN_GRACE="10s")
    c.fake.config(footage_lag_ms=0, export_delay_ms=250, export_delay_jitter_ms=300)
    container = BlobServiceClient.from_connection_string(conn % port).get_container_client(
        c.container)
    first = (int(time.time()) + 1) * 1000
    state = {"azurite": azurite}
    try:
        def between(i):
            proxy.rate = [0.0, 0.25, 0.5][i % 3]
            if state.pop("down", False):
                state["azurite"] = start_azurite(c, port, location)

        def during(i):
            if i in (2, 5, 9):  # the storage server stops mid-cycle, back for the next one
                state["azurite"].stop()
                state["down"] = True

        storm.kill_cycles(env, 12, between, during)
        if state.pop("down", False):
            state["azurite"] = start_azurite(c, port, location)
        # The last stretch runs through a storm of 500/503s without a kill.
        proxy.rate = 0.3
        d = storm.start(env)
        time.sleep(4)  # a stretch of storage trouble to live through, not a synchronisation
        d.kill()
        storm.kills += 1
        proxy.rate = 0.0
        storm.storage_faults = proxy.injected + 3  # + the three storage stops
        end = int(time.time()) * 1000 - 1000

        def state_now():
            stored, missing, leftovers = {}, {}, []
            for b in container.list_blobs(include=["uncommittedblobs"]):
                if b.name.startswith(".soracam-lake/missing/"):
                    dev, name = b.name.split("/")[2:4]
                    reason = json.loads(container.download_blob(b.name).readall()).get(
                        "reason", "")
                    missing.setdefault((dev, int(name.split(".")[0])), []).append(reason)
                elif b.name.endswith(".jpg"):
                    if not b.size:
                        leftovers.append(b.name)
                        continue
                    (dev, slots), = slots_of([b.name]).items()
                    stored.setdefault((dev, slots[0]), []).append(
                        container.download_blob(b.name).readall())
            return stored, missing, leftovers

        def done():
            names = [b.name for b in container.list_blobs()]
            per = slots_of([n for n in names if n.endswith(".jpg")])
            marks = {}
            for n in names:
                if n.startswith(".soracam-lake/missing/"):
                    dev, name = n.split("/")[2:4]
                    key = (dev, int(name.split(".")[0]))
                    marks[key] = marks.get(key, 0) + 1
            return all(s in per.get(d, []) or marks.get((d, s), 0) >= 3
                       for d in cams for s in range(first, end + 1, 1000))

        rc = settle(storm, env, done)
        check(rc == 0, "the last daemon exited %s:\n%s" % (rc, storm.logs[-1].log()[-3000:]))
        stored, missing, leftovers = state_now()
        horizon = min(int(b.name.rsplit("/", 1)[1])
                      for b in container.list_blobs(name_starts_with=".soracam-lake/since/"))
        check(horizon <= first + 3000, "catch-up horizon %d lost the first slots (%d)"
              % (horizon, first))
        judge(storm, max(first, horizon), end, stored, missing, leftovers, min_soracom_faults=5,
              min_storage_faults=50)
    finally:
        proxy.close()
        state["azurite"].stop()
