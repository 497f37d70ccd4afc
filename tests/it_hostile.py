"""Hostile peers. The fake SORACOM API answers with malformed, truncated or wrongly typed JSON,
50 MB bodies (with and without Content-Length) and huge headers: every `run` must end with a
logged error naming what was wrong and exit 1 (or recover and exit 0 when the fault is
passing), never crash, never pay for an export twice, and keep its memory bounded (the child's
peak RSS, from wait4). The daemon keeps running through such answers and recovers once they
stop. The custom handler (`serve`) refuses garbage (400) and huge bodies (413) and keeps
serving others while slow clients hold connections open."""
import json
import os
import re
import socket
import subprocess
import time

from harness import DEVICES, Failed, Result, check, iso, wait_for
from it_daemon import Proc, dir_env, get, post, start_serve, timer_payload
from it_run import past_slot

MB = 1024 * 1024
HUGE = 50 * MB      # what the fake sends
RSS_LIMIT_MB = 100  # peak RSS allowed while it does (without sanitizers)


def sanitized(c):
    return "build-san" in c.bin or "ASAN_OPTIONS" in os.environ


def run_rss(c, args, env, timeout=90):
    """Runs soracam-lake and returns (Result, peak RSS in MB) measured with os.wait4."""
    t0 = time.monotonic()
    out_path = os.path.join(c.tmp, "measured.out")
    err_path = os.path.join(c.tmp, "measured.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen([c.bin] + args, env=env, stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                os.wait4(p.pid, 0)
                raise Failed("soracam-lake %s did not finish within %ss" % (" ".join(args),
                                                                            timeout))
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path, "rb") as f:
        o = f.read()
    with open(err_path, "rb") as f:
        e = f.read()
    r = Result(p.returncode, o.decode(errors="replace"), e.decode(errors="replace"),
               time.monotonic() - t0)
    c.h.outputs.append(o + e)
    if r.rc < 0 or "runtime error" in r.err or "Sanitizer" in r.err:
        raise Failed("soracam-lake crashed or a sanitizer reported:\n%r" % r)
    return r, ru.ru_maxrss / 1024.0


def hostile_env(c, **kw):
    out = os.path.join(c.tmp, "captures")
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_CONTAINER_NAME=None,
                SORACAM_SINK="dir:" + out, SORACAM_EXPORT_TIMEOUT="5s")
    if sanitized(c):  # AddressSanitizer keeps freed memory (256 MB) unless told not to
        env["ASAN_OPTIONS"] = ":".join(o for o in (env.get("ASAN_OPTIONS"),
                                                   "quarantine_size_mb=8") if o)
    env.update(kw)
    return env


# (op, action, count, extra env, exit status, regex the log must match)
ROWS = [
    ("auth", "malformed_json", -1, {}, 1, r"authentication .* malformed JSON \(line 1"),
    ("auth", "truncated_json", -1, {}, 1, r"authentication .* malformed JSON"),
    ("auth", "json:swap_types", -1, {}, 1, r"without a string apiKey and token \(a field"),
    ("auth", "json:null", -1, {}, 1, r"authentication .* malformed JSON"),
    ("auth", "json:array", -1, {}, 1, r"without a string apiKey and token \(the answer is not"),
    ("auth", "huge_json:%d" % HUGE, -1, {}, 1, r"response larger than 1048576 bytes"),
    ("auth", "huge_json_chunked:%d" % HUGE, -1, {}, 1, r"response larger than 1048576 bytes"),
    ("auth", "huge_header:%d" % MB, -1, {}, 1, r"a header line over 102400 bytes"),
    ("auth", "many_headers:%d" % MB, -1, {}, 1, r"response headers larger than 65536 bytes"),
    # A garbled answer to the billed POST: the export was accepted, so it is found in the
    # export list and used, never requested again.
    ("export_post", "malformed_json", 1, {}, 0, r"outcome unknown .*malformed JSON.*\n.*found "
                                                r"export .* \(no second export\)"),
    ("export_post", "json:null_fields", 1, {}, 0, r"found export .* \(no second export\)"),
    ("export_post", "huge_json_chunked:%d" % HUGE, 1, {}, 0,
     r"outcome unknown \(response larger than 1048576 bytes\)"),
    ("export_post", "huge_header:%d" % MB, 1, {}, 0, r"found export .* \(no second export\)"),
    # Status polls: passing trouble is waited out; lasting trouble ends at the export timeout
    # with the last problem named.
    ("export_get", "truncated_json", 3, {}, 0, r"export status of .* unavailable .*malformed JSON"),
    ("export_get", "json:swap_types", 3, {}, 0, r"unusable export status \(export info lacks"),
    ("export_get", "huge_json_chunked:%d" % HUGE, -1, {}, 1,
     r"did not complete within 5s \(last status: .*last problem: .*response larger than"),
    ("export_get", "json:null_fields", -1, {}, 1, r"last problem: unusable answer: export info"),
    # A garbled export answer and an unreadable export list: no second request, a clear error.
    ([("export_post", "truncated_json", 1), ("export_list", "json:string", -1)], None, None, {}, 1,
     r"export list could not be read \(SORACOM list_exports: malformed JSON.*not sending it "
     r"again, to avoid a second charge"),
    # Camera discovery.
    ("devices", "json:object", -1, {"SORACOM_DEVICE_ID": None, "SORACOM_DEVICE_IDS": "all"}, 1,
     r"camera discovery failed \(SORACOM list_devices answered 200 with something other than "
     r"a list"),
    ("devices", "json:null_fields", -1, {"SORACOM_DEVICE_ID": None, "SORACOM_DEVICE_IDS": "all"},
     1, r"none with a usable deviceId"),
    ("devices", "huge_json:%d" % HUGE, -1, {"SORACOM_DEVICE_ID": None,
                                           "SORACOM_DEVICE_IDS": "all"}, 1,
     r"camera discovery failed \(SORACOM list_devices: response larger than 1048576 bytes"),
    # The image URL (not SORACOM's API, an S3-style host): retried while the URL is valid.
    ("image", "huge_header:%d" % MB, 1, {}, 0, r"download of export .* failed \(response could "
                                               r"not be read.*retrying"),
    ("image", "many_headers:%d" % MB, 1, {}, 0, r"download of export .* failed \(response "
                                                r"headers larger than 65536 bytes"),
]


def test_hostile_soracom_answers_fail_cleanly_in_bounded_memory(c):
    slot = past_slot()
    # The baseline: the same run against a well-behaved fake.
    r, base_rss = run_rss(c, ["run", "--at", iso(slot - 300000)], hostile_env(c))
    check(r.rc == 0, "baseline run failed: %r" % r)
    limit = base_rss + 30 if sanitized(c) else min(RSS_LIMIT_MB, base_rss + 30)
    failures, worst = [], (0, None)
    for i, (op, action, count, extra, want_rc, pattern) in enumerate(ROWS):
        c.fake.reset()
        rules = op if isinstance(op, list) else [(op, action, count)]
        c.fake.faults(*[{"op": o, "action": a, "count": n} for o, a, n in rules])
        op, action = rules[-1][0], "+".join(a for _, a, _ in rules)
        env = hostile_env(c, SORACAM_SINK="dir:" + os.path.join(c.tmp, "cap%d" % i))
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        r, rss = run_rss(c, ["run", "--at", iso(slot)], env)
        st = c.fake.stats()
        problems = []
        if r.rc != want_rc:
            problems.append("exit %s, want %s" % (r.rc, want_rc))
        if not re.search(pattern, r.err):
            problems.append("log does not match /%s/" % pattern)
        if want_rc == 1 and not re.search(r" error ", r.err):
            problems.append("no error line")
        if st["faults_fired"] < 1:
            problems.append("the fault never fired")
        if c.fake.posts() > 1:
            problems.append("%d exports for one slot" % c.fake.posts())
        if rss > limit:
            problems.append("peak RSS %.1f MB > %.1f MB" % (rss, limit))
        if rss > worst[0]:
            worst = (rss, "%s %s" % (op, action))
        if problems:
            failures.append("%s %s: %s\n%s" % (op, action, "; ".join(problems),
                                               "\n".join(r.err.splitlines()[-6:])))
    check(not failures, "%d of %d hostile answers mishandled:\n%s" % (
        len(failures), len(ROWS), "\n".join(failures)))
    print("     %d hostile answers; peak RSS %.1f MB (%s), baseline %.1f MB, limit %.1f MB"
          % (len(ROWS), worst[0], worst[1], base_rss, limit))


def vm_hwm_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def test_daemon_survives_hostile_answers_and_recovers(c):
    # Every API answer is 50 MB of JSON without a Content-Length, or not JSON at all.
    c.fake.config(footage_lag_ms=0, export_delay_ms=300)
    c.fake.faults({"op": "any", "action": "huge_json_chunked:%d" % HUGE, "count": 6},
                  {"op": "any", "action": "malformed_json", "count": -1})
    env, out = dir_env(c, SORACOM_DEVICE_IDS=DEVICES[0], SORACAM_CATCHUP_WINDOW="off")
    d = Proc(c, ["daemon"], env)
    try:
        d.wait_log(r"response larger than 1048576 bytes", 30)
        d.wait_log(r"capture failed device=%s .*malformed JSON" % DEVICES[0], 30, count=2)
        check(d.p.poll() is None, "the daemon exited")
        rss = vm_hwm_mb(d.p.pid)
        c.fake._call("DELETE", "/_fake/faults")
        d.wait_log(r"stored device=%s " % DEVICES[0], 30)
    finally:
        rc = d.stop()
    check(rc == 0, "daemon exit %s" % rc)
    if not sanitized(c):
        check(rss < RSS_LIMIT_MB, "daemon peak RSS %.1f MB while fed 50 MB answers" % rss)
    print("     daemon peak RSS %.1f MB while fed 50 MB answers" % rss)


# ---- the custom handler against hostile clients ---------------------------------------

def raw(port, data, timeout=10):
    """Sends data on a new connection and returns everything the server answers."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()


def status_of(answer):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(m.group(1)) if m else None


def still_open(s):
    """True while the server has not closed s."""
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def test_serve_hostile_clients_get_4xx_and_others_are_served(c):
    slot = (int(time.time()) - 3600) // 300 * 300 * 1000
    d, base = start_serve(c)
    port = int(base.rsplit(":", 1)[1])
    slow = []
    try:
        # 10 MB announced: 413 as soon as the headers are in, before the body is read.
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /SoraCamFunction HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: %d\r\n\r\n" % (10 * MB))
        answer = s.recv(65536)
        check(status_of(answer) == 413 and b"larger than 64 KiB" in answer,
              "a 10 MB body announced got %r" % answer[:200])
        try:
            for _ in range(160):  # then 10 MB of it anyway
                s.sendall(b"x" * 65536)
        except OSError:
            pass
        s.close()
        # 10 MB chunked: refused (413 or a closed connection), never buffered.
        body = b"".join(b"10000\r\n" + b"{" * 65536 + b"\r\n" for _ in range(160)) + b"0\r\n\r\n"
        answer = raw(port, b"POST /SoraCamFunction HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n" + body)
        check(status_of(answer) in (413, None), "a 10 MB chunked body got %r" % answer[:200])
        # Garbage instead of HTTP, and a non-JSON body.
        answer = raw(port, b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n")
        check(status_of(answer) == 400 or answer == b"", "garbage got %r" % answer[:200])
        st, text = post(base + "/SoraCamFunction", b"\xff\xfe<xml>not json</xml>")
        check(st == 400 and "malformed JSON" in json.loads(text)["error"],
              "non-JSON got %s %s" % (st, text))
        st, text = post(base + "/SoraCamFunction", b"[1,2,3]")
        check(st == 400 and "timer" in json.loads(text)["error"], "an array got %s %s" % (st, text))
        # Slow clients: one trickles its headers, one announced a body and sends a byte at a
        # time; both stay connected while a normal invocation is served.
        a = socket.create_connection(("127.0.0.1", port), timeout=10)
        a.sendall(b"POST /SoraCamFunction HTTP/1.1\r\nHo")
        b = socket.create_connection(("127.0.0.1", port), timeout=10)
        b.sendall(b"POST /SoraCamFunction HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        slow += [a, b]
        t0 = time.monotonic()
        utc_now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(slot // 1000 + 2)) + ".123Z"
        st, text = post(base + "/SoraCamFunction", timer_payload(utc_now))
        a.sendall(b"st: x\r\n")
        b.sendall(b" ")
        check(st == 200 and "stored" in text, "the invocation beside slow clients: %s %s"
              % (st, text))
        st, _ = get(base + "/")
        check(st == 200, "GET / beside slow clients: %s" % st)
        check(still_open(a) and still_open(b), "a slow client was dropped within %.1fs"
              % (time.monotonic() - t0))
        check(c.fake.posts() == 1, "want exactly one export, got %d" % c.fake.posts())
        rss = vm_hwm_mb(d.p.pid)
        if not sanitized(c):
            check(rss < RSS_LIMIT_MB, "serve peak RSS %.1f MB" % rss)
        check(d.p.poll() is None, "serve exited")
        print("     serve peak RSS %.1f MB after 20 MB of hostile bodies" % rss)
    finally:
        for s in slow:
            s.close()
        d.stop()
