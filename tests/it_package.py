"""Integration cases for the Azure Functions package (make functions-package).

The package is built once per run, unzipped with unzip(1) (which keeps Unix modes, as zip
deploy on Linux does), and then used the way the Functions host uses it.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
import zipfile

from harness import DEVICES, ROOT, Failed, check, free_port, iso, md5, slot_path, wait_for
from it_daemon import get, post, timer_payload

ZIP = os.path.join(ROOT, "dist", "soracam-lake-functions.zip")
FUNCTION = "SoraCamFunction"
WWWROOT = "/home/site/wwwroot"  # where the Functions host keeps the app on Linux
# glibc's own libraries: the image provides them, the package must not.
GLIBC = re.compile(r"^(ld-linux.*|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|"
                   r"libanl|libnss_\w+|libBrokenLocale|libthread_db|linux-vdso|linux-gate)\.so")
CLEAN_ENV = {"PATH": "/usr/bin:/bin"}  # no LD_LIBRARY_PATH, no LD_PRELOAD

_built = []  # [(exit status, output)] of the one make functions-package of this run


def build_package():
    """Runs make functions-package once per test run; returns the zip's path."""
    if not _built:
        # A top-level make, whatever make ran the suite.
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        p = subprocess.run(["make", "--no-print-directory", "functions-package"], cwd=ROOT, env=env,
                           capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        _built.append((p.returncode, (p.stdout + p.stderr).decode(errors="replace")))
    rc, out = _built[0]
    check(rc == 0, "make functions-package failed:\n" + out[-4000:])
    check(os.path.exists(ZIP), "make functions-package made no " + ZIP)
    return ZIP


def unzip(dest):
    """Unzips the package into dest with unzip(1); returns dest."""
    os.makedirs(dest, exist_ok=True)
    p = subprocess.run(["unzip", "-q", "-o", build_package(), "-d", dest], capture_output=True,
                       timeout=60)
    check(p.returncode == 0, "unzip failed: %s" % p.stderr.decode(errors="replace"))
    return dest


def host_json(pkg):
    with open(os.path.join(pkg, "host.json")) as f:
        return json.load(f)


def handler_argv(pkg, root=None):
    """The command line the host runs: defaultExecutablePath under the app root + arguments.
    root is the app root as the process sees it (default: pkg)."""
    d = host_json(pkg)["customHandler"]["description"]
    return [os.path.join(root or pkg, d["defaultExecutablePath"])] + list(d.get("arguments", []))


def ldd(path):
    """[(soname, resolved path or None)] from ldd with a clean environment."""
    p = subprocess.run(["ldd", path], env=CLEAN_ENV, capture_output=True, timeout=30)
    check(p.returncode == 0, "ldd failed: %s" % (p.stdout + p.stderr).decode(errors="replace"))
    libs = []
    for line in p.stdout.decode().splitlines():
        m = re.match(r"\s*(\S+) => (.*?)(?: \(0x[0-9a-f]+\))?$", line)
        if m:
            libs.append((m.group(1), None if "not found" in m.group(2) else m.group(2)))
    return libs


class Handler:
    """The packaged binary started as the Functions host starts a custom handler."""

    def __init__(self, c, argv, env, cwd=None, preexec_fn=None):
        self.log_path = os.path.join(c.tmp, "handler.log")
        self.log = open(self.log_path, "wb")
        self.c = c
        self.p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self.log, stderr=self.log,
                                  stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)

    def err(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_ready(self, base):
        """What the host does before the first invocation: GET / until anything answers."""
        def up():
            if self.p.poll() is not None:
                raise Failed("the handler exited (%s):\n%s" % (self.p.returncode, self.err()[-3000:]))
            try:
                return get(base + "/", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(up, 30, "GET / on the packaged handler")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(40)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(10)
            raise Failed("the handler did not exit within 40 s of SIGTERM")
        finally:
            self.log.close()
            self.c.h.outputs.append(self.err().encode())
        return rc


def invoke_and_check(c, h, port, captures):
    """Posts one timer invocation for an hour-old slot; checks the answer and the stored image."""
    slot = (int(time.time()) - 3600) // 300 * 300 * 1000
    base = "http://127.0.0.1:%d" % port
    h.wait_ready(base)
    # The host's UtcNow is the moment it fired, just after the slot.
    utc_now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(slot // 1000 + 1)) + ".0123456Z"
    st, body = post(base + "/" + FUNCTION, timer_payload(utc_now))
    check(st == 200, "the invocation answered %s: %s\n%s" % (st, body, h.err()[-2000:]))
    j = json.loads(body)
    check(j.get("Outputs") == {} and j.get("ReturnValue") is None
          and any(DEVICES[0] in l and "stored" in l for l in j.get("Logs", [])), "response: %r" % j)
    path = os.path.join(captures, slot_path(slot, DEVICES[0]))
    check(os.path.isfile(path), "no image at %s" % path)
    with open(path, "rb") as f:
        data = f.read()
    served = c.fake.export_for(DEVICES[0], slot)
    check(served is not None and md5(data) == served["md5"], "stored bytes are not the export's")
    with open(path + ".json") as f:
        side = json.load(f)
    check(side["metadata"]["capture_time"] == iso(slot), "sidecar: %r" % side)
    n = c.fake.posts(DEVICES[0], slot)
    check(n == 1, "exported the slot %d times" % n)


def test_functions_package_layout_and_libraries(c):
    z = build_package()
    with zipfile.ZipFile(z) as zf:
        names = set(zf.namelist())
        for want in ("host.json", FUNCTION + "/function.json", "soracam-lake"):
            check(want in names, "%s missing from the zip: %s" % (want, sorted(names)[:20]))
        mode = zf.getinfo("soracam-lake").external_attr >> 16
        check(stat.S_ISREG(mode) and mode & 0o111 == 0o111,
              "the binary's mode in the zip is %o, not executable" % mode)
        check(not any(n.endswith("local.settings.json") for n in names), "local.settings.json in the zip")
    pkg = unzip(os.path.join(c.tmp, "wwwroot"))

    h = host_json(pkg)
    check(h.get("version") == "2.0", "host.json version %r" % h.get("version"))
    check(h.get("functionTimeout") == "00:10:00", "functionTimeout %r" % h.get("functionTimeout"))
    d = h.get("customHandler", {}).get("description", {})
    check(d.get("defaultExecutablePath") == "soracam-lake", "defaultExecutablePath %r" % d)
    check(d.get("arguments") == ["serve"], "arguments %r" % d.get("arguments"))
    check(not h.get("customHandler", {}).get("enableForwardingHttpRequest"),
          "enableForwardingHttpRequest is for HTTP-only functions, not a timer")
    with open(os.path.join(pkg, FUNCTION, "function.json")) as f:
        b = json.load(f)["bindings"]
    check(len(b) == 1 and b[0] == {"name": "mytimer", "type": "timerTrigger", "direction": "in",
                                   "schedule": "0 */5 * * * *"}, "function.json bindings %r" % b)

    exe = handler_argv(pkg)[0]
    p = subprocess.run([exe, "--version"], env=dict(CLEAN_ENV, LD_BIND_NOW="1"), cwd=pkg,
                       capture_output=True, timeout=30)
    with open(os.path.join(ROOT, "VERSION")) as f:
        version = f.read().strip()
    check(p.returncode == 0 and version in p.stdout.decode(),
          "--version: exit %s %r" % (p.returncode, (p.stdout + p.stderr)[-500:]))

    # The binary's defaults agree with the package: same schedule, same function name.
    p = subprocess.run([exe, "config"], env=c.env(SORACAM_SINK="dir:" + c.tmp), cwd=pkg,
                       capture_output=True, timeout=30)
    cfg = dict(re.findall(r"^  (\S+)\s+(.*)$", p.stdout.decode(), re.M))
    check(cfg.get("SORACAM_SCHEDULE") == b[0]["schedule"],
          "SORACAM_SCHEDULE default %r differs from function.json" % cfg.get("SORACAM_SCHEDULE"))
    check(cfg.get("SORACAM_FUNCTION_NAME") == FUNCTION, "function name %r" % cfg.get("SORACAM_FUNCTION_NAME"))

    libdir = os.path.realpath(os.path.join(pkg, "lib")) + os.sep
    libs = ldd(exe)
    check(any(n.startswith("libcurl") for n, _ in libs), "ldd lists no libcurl: %r" % libs)
    for name, path in libs:
        check(path is not None, "%s not found by the loader" % name)
        if GLIBC.match(name):
            check(not os.path.exists(os.path.join(pkg, "lib", name)), "glibc's %s is bundled" % name)
        else:
            check(os.path.realpath(path).startswith(libdir),
                  "%s resolves to %s, outside the package's lib/" % (name, path))
    bundled = sorted(n for n in os.listdir(os.path.join(pkg, "lib")) if ".so" in n)
    check(bundled == sorted(n for n, _ in libs if not GLIBC.match(n)),
          "lib/ holds %r, the loader needs %r" % (bundled, [n for n, _ in libs]))
    p = subprocess.run(["readelf", "-d", exe], capture_output=True, timeout=30)
    check("Library rpath: [$ORIGIN/lib]" in p.stdout.decode(), "no RPATH $ORIGIN/lib")


def test_functions_package_as_the_functions_host_runs_it(c):
    pkg = unzip(os.path.join(c.tmp, "wwwroot"))
    captures = os.path.join(c.tmp, "captures")
    port = free_port()
    env = c.env(FUNCTIONS_CUSTOMHANDLER_PORT=str(port), SORACAM_SINK="dir:" + captures,
                SORACAM_CAPTURE_DELAY="0")
    check("LD_LIBRARY_PATH" not in env, "the environment sets LD_LIBRARY_PATH")
    h = Handler(c, handler_argv(pkg), env, cwd=pkg)
    try:
        invoke_and_check(c, h, port, captures)
    finally:
        rc = h.stop()
    check(rc == 0, "the handler exited %s after SIGTERM" % rc)


# ---- the same, on a file system that has nothing but glibc --------------------------

def glibc_files():
    """Paths of glibc's shared objects (files and symlinks) from the libc6 package."""
    p = subprocess.run(["dpkg-query", "-L", "libc6"], capture_output=True, timeout=30)
    if p.returncode != 0:
        return []
    return [f for f in p.stdout.decode().splitlines()
            if re.search(r"\.so(\.|$)", os.path.basename(f)) and os.path.lexists(f)
            and not os.path.isdir(f)]


def glibc_only_root(c):
    """A directory tree holding only glibc, with the package unzipped at /home/site/wwwroot."""
    root = os.path.join(c.tmp, "root")
    for f in glibc_files():
        dest = root + f
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.islink(f):
            os.symlink(os.readlink(f), dest)
        else:
            shutil.copy2(f, dest)
    for d in ("proc", "dev", "captures"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    unzip(root + WWWROOT)
    return root


def enter_root(root):
    """A preexec_fn: a private mount namespace (in a user namespace unless root) with /proc
    and /dev bound in (the loader needs /proc for $ORIGIN), then chroot to root and chdir to
    the app root."""
    uid, gid = os.getuid(), os.getgid()

    def enter():
        libc = ctypes.CDLL(None, use_errno=True)
        CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
        MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
        if libc.unshare(CLONE_NEWNS | (CLONE_NEWUSER if uid else 0)) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        if uid:
            for name, text in (("setgroups", "deny"), ("uid_map", "0 %d 1" % uid),
                               ("gid_map", "0 %d 1" % gid)):
                with open("/proc/self/" + name, "w") as f:
                    f.write(text)
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
        for d in (b"proc", b"dev"):
            if libc.mount(b"/" + d, root.encode() + b"/" + d, None, MS_BIND | MS_REC, None) != 0:
                raise OSError(ctypes.get_errno(), "bind mount /" + d.decode())
        os.chroot(root)
        os.chdir(WWWROOT)
    return enter


def test_functions_package_runs_where_only_glibc_is_installed(c):
    if not shutil.which("dpkg-query"):
        print("     (skipped: no dpkg-query to find glibc's files)")
        return
    root = glibc_only_root(c)
    try:
        p = subprocess.run([WWWROOT + "/soracam-lake", "--version"],
                           env=dict(CLEAN_ENV, LD_BIND_NOW="1"), capture_output=True, timeout=30,
                           preexec_fn=enter_root(root))
    except subprocess.SubprocessError as e:
        # Containers often forbid namespaces; the ldd case above still holds.
        print("     (skipped: cannot enter a private root here: %s)" % e)
        return
    check(p.returncode == 0 and b"soracam-lake" in p.stdout,
          "in a root with only glibc, --version: exit %s %r"
          % (p.returncode, (p.stdout + p.stderr).decode(errors="replace")[-1500:]))
    check(not os.path.exists(os.path.join(root, "usr/lib/x86_64-linux-gnu/libcurl.so.4"))
          and not os.path.exists(os.path.join(root, "lib/x86_64-linux-gnu/libcurl.so.4")),
          "the root has a system libcurl")

    port = free_port()
    pkg = root + WWWROOT
    env = c.env(FUNCTIONS_CUSTOMHANDLER_PORT=str(port), SORACAM_SINK="dir:/captures",
                SORACAM_CAPTURE_DELAY="0")
    h = Handler(c, handler_argv(pkg, WWWROOT), env, preexec_fn=enter_root(root))
    try:
        invoke_and_check(c, h, port, os.path.join(root, "captures"))
    finally:
        rc = h.stop()
    check(rc == 0, "the handler exited %s after SIGTERM" % rc)
