"""Integration cases for `soracam-lake daemon` and `soracam-lake serve`."""
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from harness import DEVICES, Failed, check, free_port, iso, jpeg_comment, md5, scaled, wait_for


class Proc:
    """soracam-lake running in the background, its stderr in a file."""

    def __init__(self, c, args, env):
        self.c = c
        self.err_path = os.path.join(c.tmp, "daemon.err")
        self.err_file = open(self.err_path, "wb")
        self.p = subprocess.Popen(c.cmd(args), env=env, stdout=self.err_file,
                                  stderr=self.err_file, stdin=subprocess.DEVNULL)

    def err(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout, count=1):
        """Waits until pattern (a regex) appears count times in the log."""
        return wait_for(lambda: len(re.findall(pattern, self.err())) >= count or self.dead(),
                        timeout, "%r in the log" % pattern) and not self.dead()

    def dead(self):
        if self.p.poll() is not None:
            raise Failed("soracam-lake exited early (%s):\n%s" % (self.p.returncode, self.err()[-3000:]))
        return False

    def stop(self, sig=signal.SIGTERM, timeout=40):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(10)
            raise Failed("soracam-lake did not exit within %ss of %s" % (timeout, sig))
        finally:
            self.err_file.close()
        out = self.err()
        self.c.h.outputs.append(out.encode())
        if "runtime error" in out or "Sanitizer" in out:
            raise Failed("sanitizer report:\n" + out[-4000:])
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)
        if not self.err_file.closed:
            self.err_file.close()


def dir_env(c, **kw):
    out = os.path.join(c.tmp, "captures")
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_CONTAINER_NAME=None,
                SORACAM_SINK="dir:" + out, SORACOM_DEVICE_ID=None,
                SORACOM_DEVICE_IDS=",".join(DEVICES), SORACAM_SCHEDULE="* * * * * *",
                SORACAM_CAPTURE_DELAY="0")
    env.update({k: v for k, v in kw.items() if v is not None})
    return env, out


def stored_files(out):
    return sorted(os.path.relpath(os.path.join(d, f), out)
                  for d, _, fs in os.walk(out) for f in fs if f.endswith(".jpg"))


def get(url, timeout=10):
    """(status, body) of a GET, also for error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def post(url, body, timeout=120):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def parse_prometheus(text):
    """A strict parser of the Prometheus text format: returns {(name, labels): value} and the
    declared types; fails on any malformed line."""
    samples, types, helps = {}, {}, set()
    sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? '
                           r'([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf))$')
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            check(len(parts) == 4 and parts[3] in ("counter", "gauge", "histogram", "summary",
                                                     "untyped"), "bad TYPE line %r" % line)
            check(parts[2] not in types, "TYPE declared twice for %s" % parts[2])
            types[parts[2]] = parts[3]
            continue
        check(not line.startswith("#"), "unknown comment %r" % line)
        m = sample_re.match(line)
        check(m is not None, "malformed sample line %r" % line)
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        check(name in types or base in types, "sample %s has no TYPE" % name)
        labels = tuple(sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                         m.group(3) or "")))
        check((name, labels) not in samples, "duplicate sample %s%r" % (name, labels))
        samples[(name, labels)] = float(m.group(4))
    for name, t in types.items():
        check(name in helps, "%s has no HELP" % name)
        if t == "histogram":
            buckets = sorted(((float("inf") if dict(l)["le"] == "+Inf" else float(dict(l)["le"])), v)
                             for (n, l), v in samples.items() if n == name + "_bucket")
            check(buckets and buckets[-1][0] == float("inf"), "%s lacks +Inf" % name)
            counts = [v for _, v in buckets]
            check(counts == sorted(counts), "%s buckets not cumulative" % name)
            check(samples[(name + "_count", ())] == counts[-1], "%s count != +Inf bucket" % name)
    return samples, types


def test_daemon_one_second_schedule_three_slots_each_camera(c):
    c.fake.config(footage_lag_ms=0, export_delay_ms=300)
    env, out = dir_env(c)
    d = Proc(c, ["daemon"], env)
    try:
        d.wait_log(r"cycle for slot .*: 2 stored", 30, count=3)
    finally:
        rc = d.stop()
    check(rc == 0, "daemon exit %s" % rc)
    files = stored_files(out)
    by_slot = {}
    for f in files:
        m = re.match(r"(\d{4})/(\d\d)/(\d\d)/(\w+)/soracam_(\d{8})_(\d{6})_(\d{3})\.jpg$", f)
        check(m is not None, "unexpected name %s" % f)
        check(m.group(7) == "000", "slot %s is not on a whole second" % f)
        by_slot.setdefault(m.group(5) + m.group(6), []).append(m.group(4))
        data = open(os.path.join(out, f), "rb").read()
        com = jpeg_comment(data)
        t = time.strptime(m.group(5) + m.group(6), "%Y%m%d%H%M%S")
        slot_ms = (int(time.mktime(t)) - time.timezone) * 1000
        check(com.startswith("soracam-fake device=%s time=%d " % (m.group(4), slot_ms)),
              "image of %s is for another slot: %s" % (f, com))
    full = [s for s, devs in by_slot.items() if sorted(devs) == sorted(DEVICES)]
    check(len(full) >= 3, "want >= 3 slots with both cameras, got %r" % by_slot)
    secs = sorted(int(time.mktime(time.strptime(s, "%Y%m%d%H%M%S"))) for s in by_slot)
    check(secs == list(range(secs[0], secs[0] + len(secs))), "slots are not consecutive seconds: %r" % secs)
    for e in c.fake.stats()["export_posts"].values():
        check(all(n == 1 for n in e.values()), "a slot was exported twice: %r" % e)


def test_daemon_sigterm_during_capture_stores_it_then_exits_0(c):
    c.fake.config(footage_lag_ms=0, export_delay_ms=3000)
    env, out = dir_env(c, SORACOM_DEVICE_IDS=DEVICES[0])
    d = Proc(c, ["daemon"], env)
    try:
        wait_for(lambda: c.fake.posts() >= 1 or d.dead(), 20, "an export request")
        posted = c.fake.posts()
    except Exception:
        d.kill()
        raise
    rc = d.stop(signal.SIGTERM)
    check(rc == 0, "exit %s after SIGTERM:\n%s" % (rc, d.err()[-2000:]))
    err = d.err()
    check("SIGTERM received" in err and "all captures finished" in err, "no graceful stop:\n" + err[-2000:])
    files = stored_files(out)
    check(len(files) >= posted and len(files) == c.fake.posts(),
          "captures in flight at SIGTERM were not all stored: %d files, %d exports" % (len(files), c.fake.posts()))


def test_daemon_second_signal_exits_at_once(c):
    c.fake.config(footage_lag_ms=0, export_delay_ms=20000)
    env, out = dir_env(c, SORACOM_DEVICE_IDS=DEVICES[0])
    d = Proc(c, ["daemon"], env)
    try:
        wait_for(lambda: c.fake.posts() >= 1 or d.dead(), 20, "an export request")
        d.p.send_signal(signal.SIGTERM)
        d.wait_log("SIGTERM received", 10)
    except Exception:
        d.kill()
        raise
    t0 = time.monotonic()
    rc = d.stop(signal.SIGTERM, timeout=10)
    check(rc == 128 + signal.SIGTERM, "want exit %d, got %s" % (128 + signal.SIGTERM, rc))
    check(time.monotonic() - t0 < 5, "second signal did not exit at once")


def test_daemon_late_tick_is_past_due(c):
    c.fake.config(footage_lag_ms=0, export_delay_ms=100)
    env, out = dir_env(c, SORACOM_DEVICE_IDS=DEVICES[0])
    d = Proc(c, ["daemon"], env)
    try:
        d.wait_log(r"cycle for slot", 20)
        d.p.send_signal(signal.SIGSTOP)
        time.sleep(3.5)  # the stall under test: the process cannot run during it
        d.p.send_signal(signal.SIGCONT)
        d.wait_log(r"past due by", 20)
        d.wait_log(r"skipped \d+ slot", 20)
        d.wait_log(r"cycle for slot", 20, count=3)
    finally:
        rc = d.stop()
    check(rc == 0, "exit %s" % rc)


def test_daemon_metrics_parse_and_health(c):
    c.fake.config(footage_lag_ms=0, export_delay_ms=200)
    port = free_port()
    env, out = dir_env(c, SORACAM_LISTEN="127.0.0.1:%d" % port)
    d = Proc(c, ["daemon"], env)
    try:
        d.wait_log(r"cycle for slot .*: 2 stored", 30, count=2)
        st, body = get("http://127.0.0.1:%d/healthz" % port)
        check(st == 200 and json.loads(body)["status"] == "ok", "healthz: %s %s" % (st, body))
        st, text = get("http://127.0.0.1:%d/metrics" % port)
        check(st == 200, "metrics status %s" % st)
        samples, types = parse_prometheus(text)
        for dev in DEVICES:
            n = samples.get(("soracam_captures_total", (("device", dev), ("result", "stored"))))
            check(n is not None and n >= 2, "captures_total for %s: %r" % (dev, n))
            check(("soracam_last_success_timestamp_seconds", (("device", dev),)) in samples,
                  "no last success time for %s" % dev)
        check(types.get("soracam_capture_duration_seconds") == "histogram", "no duration histogram")
        check(types.get("soracam_export_wait_seconds") == "histogram", "no export wait histogram")
        check(samples[("soracam_stored_bytes_total", ())] > 0, "no bytes counted")
        reqs = {dict(l)["operation"]: v for (n, l), v in samples.items()
                if n == "soracam_soracom_requests_total" and dict(l)["status"] == "200"}
        check(reqs.get("export", 0) >= 4 and reqs.get("auth", 0) == 1, "request counts: %r" % reqs)
        st, _ = get("http://127.0.0.1:%d/nope" % port)
        check(st == 404, "unknown path gave %s" % st)
    finally:
        rc = d.stop()
    check(rc == 0, "exit %s" % rc)


def test_daemon_health_turns_503_when_cycles_stop(c):
    c.fake.config(footage_lag_ms=0, export_delay_ms=60000)
    port = free_port()
    env, out = dir_env(c, SORACAM_LISTEN="127.0.0.1:%d" % port, SORACOM_DEVICE_IDS=DEVICES[0],
                       SORACAM_EXPORT_TIMEOUT="60s", SORACAM_SHUTDOWN_GRACE="1s")
    d = Proc(c, ["daemon"], env)
    try:
        d.wait_log("health and metrics on", 10)
        st, body = get("http://127.0.0.1:%d/healthz" % port)
        check(st == 200 and json.loads(body)["status"] == "starting", "healthz at start: %s %s" % (st, body))
        wait_for(lambda: get("http://127.0.0.1:%d/healthz" % port)[0] == 503, 15, "healthz 503")
        st, body = get("http://127.0.0.1:%d/healthz" % port)
        j = json.loads(body)
        check(j["status"] == "unhealthy" and "reason" in j, "503 body: %s" % body)
    finally:
        d.stop(signal.SIGTERM)
        d.kill()


def test_daemon_json_log_lines(c):
    c.fake.config(footage_lag_ms=0, export_delay_ms=100)
    env, out = dir_env(c, SORACOM_DEVICE_IDS=DEVICES[0], SORACAM_LOG_FORMAT="json")
    d = Proc(c, ["daemon"], env)
    try:
        d.wait_log(r"cycle for slot", 20)
    finally:
        d.stop()
    lines = [l for l in d.err().splitlines() if l.strip()]
    for l in lines:
        j = json.loads(l)
        check(set(j) == {"time", "level", "msg"}, "unexpected keys %r" % j)
    check(any("stored device=" in json.loads(l)["msg"] for l in lines), "no capture line")


# ---- serve: a fake Azure Functions host ------------------------------------------------

def timer_payload(utc_now, past_due=False):
    """The body the Functions host posts for a timer trigger (custom handler)."""
    return {
        "Data": {"mytimer": {"Schedule": {"AdjustForDST": True},
                             "ScheduleStatus": {"Last": "2026-11-26T09:00:00+00:00",
                                                "Next": "2026-11-26T09:05:00+00:00",
                                                "LastUpdated": "2026-11-26T09:00:00+00:00"},
                             "IsPastDue": past_due}},
        "Metadata": {"mytimer": None,
                     "sys": {"MethodName": "SoraCamFunction", "UtcNow": utc_now,
                             "RandGuid": "0f4e1c0e-5c1a-4c51-9a4b-64c9b5fc1c7b"}},
    }


def start_serve(c, **kw):
    port = free_port()
    env = c.env(FUNCTIONS_CUSTOMHANDLER_PORT=str(port), SORACAM_CAPTURE_DELAY="0", **kw)
    d = Proc(c, ["serve"], env)
    base = "http://127.0.0.1:%d" % port
    # What the host does: poll GET / until anything answers.
    def up():
        d.dead()
        try:
            return get(base + "/", timeout=2)[0] == 200
        except OSError:
            return False
    try:
        wait_for(up, 20, "GET / to answer")
    except Exception:
        d.kill()
        raise
    return d, base


def test_serve_timer_invocation_stores_slot(c):
    slot = (int(time.time()) - 3600) // 300 * 300 * 1000
    d, base = start_serve(c)
    try:
        utc_now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(slot // 1000 + 2)) + ".1234567Z"
        st, body = post(base + "/SoraCamFunction", timer_payload(utc_now))
        check(st == 200, "invocation answered %s: %s\n%s" % (st, body, d.err()[-2000:]))
        j = json.loads(body)
        check(j["Outputs"] == {} and j["ReturnValue"] is None and isinstance(j["Logs"], list),
              "response shape: %r" % j)
        check(len(j["Logs"]) == 1 and DEVICES[0] in j["Logs"][0] and "stored" in j["Logs"][0],
              "one log line per camera: %r" % j["Logs"])
        from it_run import assert_stored
        assert_stored(c, DEVICES[0], slot)
        st, body = post(base + "/SoraCamFunction", timer_payload(utc_now, past_due=True))
        j = json.loads(body)
        check(st == 200 and any("already stored" in l for l in j["Logs"]), "second tick: %s %s" % (st, body))
        check("past due" in d.err(), "IsPastDue not logged")
        check(c.fake.posts() == 1, "second invocation exported again")
    finally:
        rc = d.stop()
    check(rc == 0, "serve exit %s" % rc)


def test_serve_failing_capture_is_non_2xx(c):
    c.fake.faults({"op": "export_post", "action": "terminal:failed", "count": 1})
    slot = (int(time.time()) - 3600) // 300 * 300 * 1000
    d, base = start_serve(c)
    try:
        st, body = post(base + "/SoraCamFunction", timer_payload(iso(slot + 1000)))
        check(st >= 300, "a failed capture answered %s" % st)
        j = json.loads(body)
        check("Error" in j and "failed" in j["Error"] and "status failed" in j["Logs"][0],
              "no JSON reason: %r" % j)
    finally:
        d.stop()


def test_serve_rejects_garbage_and_keeps_serving(c):
    d, base = start_serve(c)
    try:
        st, body = post(base + "/SoraCamFunction", b"{not json")
        check(st == 400 and "malformed JSON" in json.loads(body)["error"], "garbage: %s %s" % (st, body))
        st, body = post(base + "/SoraCamFunction", {"Data": {"x": 1}})
        check(st == 400 and "timer" in json.loads(body)["error"], "not a timer: %s %s" % (st, body))
        st, body = post(base + "/SoraCamFunction", b"{" + b" " * (70 * 1024) + b"}")
        check(st == 413, "oversized body answered %s" % st)
        st, _ = post(base + "/OtherFunction", timer_payload(iso(int(time.time()) * 1000)))
        check(st == 404, "unknown function answered %s" % st)
        # A slow client holding a connection open does not block others.
        s = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        s.sendall(b"POST /SoraCamFunction HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        st, _ = get(base + "/")
        check(st == 200, "server stopped serving")
        s.close()
        check(c.fake.posts() == 0, "garbage caused an export")
    finally:
        d.stop()


def test_serve_without_port_is_config_error(c):
    r = c.run(["serve"], c.env(FUNCTIONS_CUSTOMHANDLER_PORT=None))
    check(r.rc == 2 and "FUNCTIONS_CUSTOMHANDLER_PORT" in r.err, "want exit 2 naming the variable: %r" % r)


def test_daemon_waits_for_storage_down_at_start_and_stops_on_sigterm(c):
    port = free_port()  # nothing listens there: the storage is down
    conn = c.azurite_conn().replace(":%d/" % c.h.azurite_port, ":%d/" % port)
    d = Proc(c, ["daemon"], c.env(AZURE_STORAGE_CONNECTION_STRING=conn))
    try:
        d.wait_log(r"storage is not usable: .*; trying again in 5s", 60)
    finally:
        rc = d.stop(timeout=20)
    check(rc == 0, "a daemon stopped while waiting for its storage exited %s" % rc)
    check("stopped while waiting for the storage" in d.err(), "no goodbye: %s" % d.err()[-500:])
    check(c.fake.posts() == 0, "exported without storage")
