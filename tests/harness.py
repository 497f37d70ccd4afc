#!/usr/bin/env python3
"""soracam-lake test harness.

Starts Azurite (the Azure Storage emulator) and the project's fake SORACOM API on free
loopback ports, runs the cmocka unit test binaries, then every integration case
(functions named test_* in tests/it_*.py), stops the servers, and ends with the line
"N passed, N failed". Exit status 0 only when nothing failed.

    python3 tests/harness.py --build build --bin ./soracam-lake [-k substring[,substring...]]
                             [--no-unit] [--wrap "valgrind ..."] [--time-scale N]

--wrap runs every soracam-lake invocation under a command prefix. For valgrind, each
process writes its report to the case's directory, and a case fails when any report holds
an error or a counted leak. --time-scale multiplies the cases' timeouts (for slow wrappers).
"""
import argparse
import glob
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Set by main from --wrap and --time-scale; the it_*.py modules see the same values because
# they import this module (see the sys.modules alias at the end).
WRAP = []
TIME_SCALE = 1.0


def scaled(seconds):
    """A timeout stretched by --time-scale."""
    return seconds * TIME_SCALE


AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")
AUTH_KEY_ID = "keyId-test-harness"
AUTH_KEY = "secret-harness-K3y-do-not-print-0123456789"
DEVICES = ["7CDDDE000001", "7CDDDE000002"]


class Failed(AssertionError):
    pass


def check(cond, msg):
    """Fails the current case with msg unless cond holds."""
    if not cond:
        raise Failed(msg)


def wait_for(cond, timeout, what):
    """Polls cond() until true; fails after timeout seconds (times --time-scale). For
    conditions, not sleeps."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise Failed("timed out after %ss waiting for %s" % (timeout, what))


def make_test_ca(directory):
    """A private CA and a server certificate for 127.0.0.1 and localhost, made with the openssl
    command line into directory (at test time; no key is ever committed). Returns the paths
    {"ca", "cert", "key"}; made once per directory."""
    paths = {"ca": os.path.join(directory, "test-ca.pem"),
             "cert": os.path.join(directory, "server.pem"),
             "key": os.path.join(directory, "server.key")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    os.makedirs(directory, exist_ok=True)
    ca_key = os.path.join(directory, "test-ca.key")
    csr = os.path.join(directory, "server.csr")
    ext = os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for argv in (
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", ca_key, "-out", paths["ca"], "-days", "2",
             "-subj", "/CN=soracam-lake test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", paths["key"], "-out", csr, "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", csr, "-CA", paths["ca"], "-CAkey", ca_key,
             "-CAcreateserial", "-out", paths["cert"], "-days", "2", "-extfile", ext]):
        p = subprocess.run(["openssl"] + argv, capture_output=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (argv[0], p.stderr.decode()[-500:]))
    os.chmod(paths["key"], 0o600)
    return paths


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Server:
    """A child process with its output in a log file; stopped at the end."""

    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.log_path = os.path.join(logdir, name + ".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()

    def tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


class Fake:
    """Client of the fake SORACOM API's control interface."""

    def __init__(self, port, cafile=None):
        self.port = port
        self.url = "%s://127.0.0.1:%d" % ("https" if cafile else "http", port)
        self.ssl = None
        if cafile:  # an HTTPS fake: trust its test CA
            import ssl
            self.ssl = ssl.create_default_context(cafile=cafile)

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=self.ssl) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def reset(self):
        self._call("POST", "/_fake/reset", {})

    def config(self, **kw):
        self._call("POST", "/_fake/config", kw)

    def faults(self, *rules):
        self._call("POST", "/_fake/faults", list(rules))

    def stats(self):
        return self._call("GET", "/_fake/stats")

    def posts(self, device=None, time_ms=None):
        """Export POSTs the fake accepted, overall or for one device / (device, time)."""
        ep = self.stats().get("export_posts", {})
        if device is None:
            return sum(sum(v.values()) for v in ep.values())
        per = ep.get(device, {})
        if time_ms is None:
            return sum(per.values())
        return per.get(str(time_ms), 0)

    def export_for(self, device, time_ms):
        """The fake's record of the completed export of (device, time), or None."""
        for e in self.stats().get("exports", []):
            if e["deviceId"] == device and e["time"] == time_ms and e.get("md5"):
                return e
        return None


class Tripwire:
    """A loopback listener that counts connection attempts (to prove no network use)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
                c.close()
                n += 1
            except BlockingIOError:
                return n

    def close(self):
        self.sock.close()


class Result:
    def __init__(self, rc, out, err, seconds):
        self.rc, self.out, self.err, self.seconds = rc, out, err, seconds

    def __repr__(self):
        return "exit %s\n--- stdout\n%s\n--- stderr\n%s" % (self.rc, self.out[-3000:],
                                                          self.err[-6000:])


class Ctx:
    """What every integration case gets: servers, a scratch directory, helpers."""

    def __init__(self, h, name, tmp):
        self.h = h
        self.fake = h.fake
        self.tmp = tmp
        self.bin = h.bin
        self.build = h.build
        self.container = re.sub(r"[^a-z0-9]", "", name.lower())[:40] + "-%d" % h.seq
        h.seq += 1

    # Environments -------------------------------------------------------------------
    def azurite_conn(self):
        return ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;"
                "BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;" % (AZURITE_KEY,
                                                                        self.h.azurite_port))

    def env(self, **kw):
        """The reference deployment's variables pointed at the fakes, plus kw (None unsets)."""
        e = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SORACOM_AUTH_KEY_ID": AUTH_KEY_ID,
            "SORACOM_AUTH_KEY": AUTH_KEY,
            "SORACOM_DEVICE_ID": DEVICES[0],
            "AZURE_STORAGE_CONNECTION_STRING": self.azurite_conn(),
            "AZURE_STORAGE_CONTAINER_NAME": self.container,
            "USE_SORACOM_API": "true",
            "SORACOM_API_ENDPOINT": self.fake.url,
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        for k, v in kw.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def cmd(self, args):
        """The command line that runs soracam-lake with args (under --wrap, if given)."""
        wrap = list(WRAP)
        if wrap and os.path.basename(wrap[0]) == "valgrind":
            wrap.insert(1, "--log-file=" + os.path.join(self.tmp, "valgrind.%p.log"))
        return wrap + [self.bin] + args

    def run(self, args, env=None, timeout=90):
        """Runs soracam-lake with args; returns Result. Bounded by timeout."""
        t0 = time.monotonic()
        p = subprocess.run(self.cmd(args), env=env if env is not None else self.env(),
                           capture_output=True, timeout=scaled(timeout),
                           stdin=subprocess.DEVNULL)
        r = Result(p.returncode, p.stdout.decode(errors="replace"),
                   p.stderr.decode(errors="replace"), time.monotonic() - t0)
        self.h.outputs.append(p.stdout + p.stderr)
        if r.rc < 0 or "runtime error" in r.err or "AddressSanitizer" in r.err \
                or "LeakSanitizer" in r.err:
            raise Failed("soracam-lake crashed or a sanitizer reported:\n%r" % r)
        return r

    # Azurite access through the official SDK ---------------------------------------
    def container_client(self):
        from azure.storage.blob import BlobServiceClient
        svc = BlobServiceClient.from_connection_string(self.azurite_conn())
        return svc.get_container_client(self.container)

    def blobs(self, reserved=False):
        """Names in the container; soracam-lake's own records (.soracam-lake/) only when
        reserved is true."""
        c = self.container_client()
        try:
            return sorted(b.name for b in c.list_blobs()
                          if reserved or not b.name.startswith(".soracam-lake/"))
        except Exception as e:  # container missing
            if "ContainerNotFound" in str(e):
                return []
            raise

    def blob(self, name):
        """(bytes, properties) of a blob."""
        bc = self.container_client().get_blob_client(name)
        return bc.download_blob().readall(), bc.get_blob_properties()


def valgrind_findings(tmp):
    """The valgrind reports in tmp that hold an error or a counted leak, with their text. (A
    process a case killed with SIGKILL leaves a report without a summary: nothing to judge.)"""
    bad = []
    for path in sorted(glob.glob(os.path.join(tmp, "valgrind.*.log"))):
        with open(path, errors="replace") as f:
            text = f.read()
        m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        if m is not None and int(m.group(1)) > 0:
            bad.append("%s:\n%s" % (os.path.basename(path), text[-6000:]))
    return bad


def jpeg_comment(data):
    """The text of the first COM segment of a JPEG, or None."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        m = data[i + 1]
        n = (data[i + 2] << 8) | data[i + 3]
        if m == 0xFE:
            return data[i + 4:i + 2 + n].decode(errors="replace")
        if m == 0xDA:
            return None
        i += 2 + n
    return None


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def slot_path(ms, device, template="default"):
    t = time.gmtime(ms // 1000)
    base = "soracam_%s_%s_%03d.jpg" % (time.strftime("%Y%m%d", t), time.strftime("%H%M%S", t),
                                       ms % 1000)
    day = time.strftime("%Y/%m/%d", t)
    if template == "reference":
        return "%s/%s" % (day, base)
    return "%s/%s/%s" % (day, device, base)


def md5(b):
    return hashlib.md5(b).hexdigest()


class Harness:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.bin = os.path.abspath(args.bin)
        self.tmp = tempfile.mkdtemp(prefix="soracam-test-")
        self.servers = []
        self.outputs = []  # everything soracam-lake printed, for the secrets check
        self.seq = 0
        self.passed = 0
        self.failed = 0
        self.failures = []

    # Servers ------------------------------------------------------------------------
    def start_fake(self):
        port_file = os.path.join(self.tmp, "fake.port")
        srv = Server("fake_soracom", [os.path.join(self.build, "fake_soracom"), "--port", "0",
                                      "--port-file", port_file, "--devices", "2",
                                      "--auth-key-id", AUTH_KEY_ID, "--auth-key", AUTH_KEY],
                     self.tmp)
        self.servers.append(srv)
        try:
            wait_for(lambda: os.path.exists(port_file) or not srv.alive(), 20, "fake SORACOM")
        except Failed:
            pass
        if not os.path.exists(port_file):
            raise RuntimeError("fake SORACOM did not start:\n" + srv.tail())
        self.fake = Fake(int(open(port_file).read().strip()))

    def start_azurite(self):
        exe = os.path.join(HERE, "node_modules", ".bin", "azurite-blob")
        if not os.path.exists(exe):
            raise RuntimeError("Azurite is not installed: run scripts/setup.sh --test")
        for _ in range(5):
            port = free_port()
            srv = Server("azurite", [exe, "--blobHost", "127.0.0.1", "--blobPort", str(port),
                                     "--inMemoryPersistence", "--silent"], self.tmp)
            try:
                wait_for(lambda: port_open(port) or not srv.alive(), 60, "Azurite")
            except Failed:
                pass
            if srv.alive() and port_open(port):
                self.servers.append(srv)
                self.azurite_port = port
                return
            srv.stop()
        raise RuntimeError("Azurite did not start:\n" + srv.tail())

    def stop(self):
        for s in self.servers:
            s.stop()

    # Unit tests ---------------------------------------------------------------------
    def run_unit(self):
        for exe in sorted(glob.glob(os.path.join(self.build, "test_*"))):
            name = os.path.basename(exe)
            try:
                p = subprocess.run([exe], capture_output=True, timeout=300, cwd=ROOT,
                                   env=dict(os.environ, SORACAM_TEST_DATA=os.path.join(HERE, "data")))
                out = (p.stdout + p.stderr).decode(errors="replace")
            except subprocess.TimeoutExpired:
                out, p = "timed out", None
            ok = len(re.findall(r"^\[       OK \] ", out, re.M))
            skipped = len(re.findall(r"^\[  SKIPPED \] ", out, re.M))
            bad = len(re.findall(r"^\[  FAILED  \] (?!\d+ test)", out, re.M))
            bad += len(re.findall(r"^\[  ERROR   \] ", out, re.M))
            if p is None or (p.returncode != 0 and bad == 0):
                bad += 1
            self.passed += ok
            self.failed += bad
            print("unit %-28s %d passed, %d failed%s" % (name, ok, bad,
                                                        ", %d skipped" % skipped if skipped else ""))
            if bad:
                self.failures.append(name)
                print(out[-4000:])
            sys.stdout.flush()

    # Integration tests ----------------------------------------------------------------
    def cases(self):
        found = []
        for path in sorted(glob.glob(os.path.join(HERE, "it_*.py"))):
            modname = os.path.splitext(os.path.basename(path))[0]
            spec = importlib.util.spec_from_file_location(modname, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            for name in sorted(dir(mod)):
                fn = getattr(mod, name)
                if name.startswith("test_") and callable(fn):
                    found.append(("%s.%s" % (modname, name), fn))
        if self.args.k:
            keys = [k.strip() for k in self.args.k.split(",") if k.strip()]
            found = [c for c in found if any(k in c[0] for k in keys)]
        return found

    def run_integration(self):
        for name, fn in self.cases():
            tmp = tempfile.mkdtemp(prefix="case-", dir=self.tmp)
            t0 = time.monotonic()
            try:
                self.fake.reset()
                fn(Ctx(self, name.split(".")[1], tmp))
                reports = valgrind_findings(tmp) if WRAP else []
                if reports:
                    raise Failed("valgrind found errors or leaks:\n" + "\n".join(reports))
                self.passed += 1
                print("ok   %-58s %5.1fs" % (name, time.monotonic() - t0))
            except Exception as e:
                self.failed += 1
                self.failures.append(name)
                print("FAIL %-58s %5.1fs" % (name, time.monotonic() - t0))
                if isinstance(e, AssertionError):
                    print("     " + str(e).replace("\n", "\n     "))
                else:
                    traceback.print_exc()
                if WRAP and "valgrind found" not in str(e):
                    for r in valgrind_findings(tmp):
                        print("     " + r.replace("\n", "\n     "))
                for s in self.servers:
                    if not s.alive():
                        print("     server %s died:\n%s" % (s.name, s.tail()))
            sys.stdout.flush()

    def check_secrets(self):
        """No secret the suite used appears in anything soracam-lake printed."""
        import base64
        import urllib.parse
        secrets = [AUTH_KEY, AZURITE_KEY]
        forms = set()
        for s in secrets:
            forms.update({s, urllib.parse.quote(s, safe=""), base64.b64encode(s.encode()).decode()})
        blob = b"\n".join(self.outputs)
        hits = [f for f in forms if f.encode() in blob]
        if hits:
            self.failed += 1
            self.failures.append("secrets-in-output")
            print("FAIL secrets found in program output: %d form(s)" % len(hits))
        else:
            self.passed += 1
            print("ok   %-58s (%d runs scanned)" % ("harness.no_secret_in_any_output",
                                                    len(self.outputs)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--bin", default=os.path.join(ROOT, "soracam-lake"))
    ap.add_argument("-k", help="only integration cases whose name contains this (or any of "
                               "several, comma-separated)")
    ap.add_argument("--no-unit", action="store_true")
    ap.add_argument("--wrap", default="", help="command prefix for every soracam-lake run")
    ap.add_argument("--time-scale", type=float, default=1.0,
                    help="multiply the cases' timeouts by this")
    args = ap.parse_args()
    global WRAP, TIME_SCALE
    WRAP = shlex.split(args.wrap)
    TIME_SCALE = args.time_scale
    h = Harness(args)
    t0 = time.monotonic()
    try:
        if not args.no_unit and not args.k:
            h.run_unit()
        h.start_fake()
        h.start_azurite()
        h.run_integration()
        if not args.k:
            h.check_secrets()
    except Exception:
        traceback.print_exc()
        h.failed += 1
    finally:
        h.stop()
    if h.failures:
        print("failed: " + ", ".join(h.failures))
    print("(%.0fs)" % (time.monotonic() - t0))
    if h.failed == 0 and not os.environ.get("SORACAM_TEST_KEEP"):
        shutil.rmtree(h.tmp, ignore_errors=True)
    else:
        print("logs kept in " + h.tmp)
    print("%d passed, %d failed" % (h.passed, h.failed))
    sys.exit(1 if h.failed else 0)


if __name__ == "__main__":
    # The cases import "harness": make that this very module, so they share WRAP and
    # TIME_SCALE with main instead of loading a second copy.
    sys.modules["harness"] = sys.modules[__name__]
    main()
