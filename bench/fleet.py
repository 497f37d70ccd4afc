#!/usr/bin/env python3
"""The fleet benchmark (make bench): one slot for N cameras against the fake SORACOM API in
its benchmark profile, into the local directory sink (or Azurite with --sink azurite).

Prints wall time, captures per second, the overhead beyond each export's ready time (p50,
p95: from the moment the fake would answer "completed" to the image being stored), client
CPU per capture, peak RSS and connections opened. Not a test: it asserts nothing, it
measures. Everything runs on loopback and every wait is bounded.

    python3 bench/fleet.py [--cameras 1000] [--delay-ms 2000] [--jitter-ms 4000]
                           [--image-bytes 300000] [--sink dir|azurite] [--repeat 1] [--https]

--https serves the fake SORACOM API and its image URLs over HTTPS with a private test CA made
at run time (openssl), which soracam-lake trusts through SORACAM_CA_FILE: the cost of TLS
handshakes and encryption shows in the figures.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from harness import (AZURITE_KEY, Server, free_port, make_test_ca, port_open,  # noqa: E402
                     wait_for)

KEY_ID, KEY = "keyId-bench", "secret-bench"


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def log_ms(line):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z", line)
    t = time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    return (int(time.mktime(t)) - time.timezone) * 1000 + int(m.group(2))


def proc_cpu(pid):
    """CPU seconds (user + system) a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(args, tmp, fake_url, env_sink, slot_ms, fake_pid, ssl_ctx=None):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "SORACOM_API_ENDPOINT": fake_url, "SORACOM_AUTH_KEY_ID": KEY_ID,
           "SORACOM_AUTH_KEY": KEY, "SORACOM_DEVICE_IDS": "all",
           "SORACAM_CAPTURE_DELAY": "0", "SORACAM_MAX_IN_FLIGHT": str(args.cameras)}
    if args.https:
        env["SORACAM_CA_FILE"] = os.path.join(tmp, "tls", "test-ca.pem")
    env.update(dict(kv.split("=", 1) for kv in args.env))
    env.update(env_sink)
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(slot_ms // 1000))
    err_path = os.path.join(tmp, "run.err")
    fake_cpu0 = proc_cpu(fake_pid)
    with open(err_path, "wb") as err:
        t0 = time.monotonic()
        p = subprocess.Popen([os.path.join(ROOT, "soracam-lake"), "run", "--at", iso], env=env,
                             stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + args.timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                print("bench: soracam-lake did not finish within %ss" % args.timeout)
                break
            time.sleep(0.01)
        wall = time.monotonic() - t0
    fake_cpu = proc_cpu(fake_pid) - fake_cpu0
    text = open(err_path, encoding="utf-8", errors="replace").read()
    stored = {}
    for line in text.splitlines():
        m = re.search(r"stored device=(\w+) ", line)
        if m:
            stored[m.group(1)] = log_ms(line)
    conns = re.search(r"(\d+) connections opened", text)
    with urllib.request.urlopen(fake_url + "/_fake/stats", timeout=30, context=ssl_ctx) as r:
        stats = json.load(r)
    ready = {e["deviceId"]: e["readyTime"] for e in stats["exports"]
             if e["time"] == slot_ms and "readyTime" in e}
    overhead = [stored[d] - ready[d] for d in stored if d in ready]
    cpu = ru.ru_utime + ru.ru_stime
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "cameras": args.cameras,
        "stored": len(stored),
        "wall_s": round(wall, 3),
        "captures_per_s": round(len(stored) / wall, 1) if wall else 0,
        "overhead_p50_ms": round(pct(overhead, 50)),
        "overhead_p95_ms": round(pct(overhead, 95)),
        "overhead_max_ms": max(overhead) if overhead else None,
        "cpu_s": round(cpu, 3),
        "cpu_user_s": round(ru.ru_utime, 3),
        "cpu_sys_s": round(ru.ru_stime, 3),
        "cpu_ms_per_capture": round(1000 * cpu / max(len(stored), 1), 3),
        "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
        "fake_cpu_s": round(fake_cpu, 2),
        "connections_opened": int(conns.group(1)) if conns else None,
        "soracom_requests": stats["requests"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=1000)
    ap.add_argument("--delay-ms", type=int, default=2000)
    ap.add_argument("--jitter-ms", type=int, default=4000)
    ap.add_argument("--image-bytes", type=int, default=300000)
    ap.add_argument("--sink", choices=["dir", "azurite"], default="dir")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--keep", action="store_true",
                    help="keep the stored images and logs (their directory is printed)")
    ap.add_argument("--https", action="store_true",
                    help="the fake over HTTPS with a private test CA (made with openssl)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra setting for soracam-lake, e.g. SORACAM_POLL_INTERVAL=500ms")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="soracam-bench-")
    servers = []
    try:
        port_file = os.path.join(tmp, "fake.port")
        tls, ssl_ctx = [], None
        if args.https:
            import ssl
            paths = make_test_ca(os.path.join(tmp, "tls"))
            tls = ["--tls-cert", paths["cert"], "--tls-key", paths["key"]]
            ssl_ctx = ssl.create_default_context(cafile=paths["ca"])
        fake = Server("fake", [os.path.join(ROOT, "build", "fake_soracom"), "--port", "0",
                               "--port-file", port_file, "--devices", str(args.cameras),
                               "--export-delay-ms", str(args.delay_ms),
                               "--export-delay-jitter-ms", str(args.jitter_ms),
                               "--image-bytes", str(args.image_bytes), "--footage-lag-ms", "0",
                               "--fast-images", "--quiet", "--auth-key-id", KEY_ID,
                               "--auth-key", KEY] + tls, tmp)
        servers.append(fake)
        wait_for(lambda: os.path.exists(port_file) or not fake.alive(), 20, "the fake")
        fake_url = "%s://127.0.0.1:%s" % ("https" if args.https else "http",
                                          open(port_file).read().strip())
        results = []
        for k in range(args.repeat):
            if args.sink == "azurite":
                port = free_port()
                az = Server("azurite%d" % k, [os.path.join(ROOT, "tests", "node_modules", ".bin",
                                                           "azurite-blob"),
                                              "--blobHost", "127.0.0.1", "--blobPort", str(port),
                                              "--inMemoryPersistence", "--silent"], tmp)
                servers.append(az)
                wait_for(lambda: port_open(port), 60, "Azurite")
                sink = {"AZURE_STORAGE_CONNECTION_STRING":
                        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;"
                        "BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;" % (AZURITE_KEY, port),
                        "AZURE_STORAGE_CONTAINER_NAME": "bench"}
            else:
                sink = {"SORACAM_SINK": "dir:" + os.path.join(tmp, "captures%d" % k)}
            slot = (int(time.time()) - 3600 - 300 * k) // 300 * 300 * 1000
            results.append(one_run(args, tmp, fake_url, sink, slot, fake.proc.pid, ssl_ctx))
        print("fleet benchmark: %d cameras, export ready after %d-%d ms, %d-byte JPEGs, %s sink%s"
              % (args.cameras, args.delay_ms, args.delay_ms + args.jitter_ms, args.image_bytes,
                 args.sink, ", HTTPS (test CA)" if args.https else ""))
        keys = ["stored", "wall_s", "captures_per_s", "overhead_p50_ms", "overhead_p95_ms",
                "overhead_max_ms", "cpu_ms_per_capture", "cpu_s", "cpu_user_s", "cpu_sys_s", "fake_cpu_s", "peak_rss_mb",
                "connections_opened", "soracom_requests", "exit"]
        for key in keys:
            print("  %-20s %s" % (key, "  ".join(str(r[key]) for r in results)))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        for s in servers:
            s.stop()
        if args.keep:
            print("kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
