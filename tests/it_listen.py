"""The listening sockets bind the loopback address unless an address is given: `daemon
--listen PORT` (or :PORT) and `serve` (FUNCTIONS_CUSTOMHANDLER_PORT). Judged from the kernel's
table of listening sockets (/proc/net/tcp, tcp6), not from a log line."""
import os

from harness import check, free_port
from it_daemon import Proc, dir_env, get


def listeners(port):
    """Local addresses ("127.0.0.1", "0.0.0.0", "::", ...) listening on TCP port."""
    out = []
    for path, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(path):
            continue
        with open(path) as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                addr, p = local.split(":")
                if state != "0A" or int(p, 16) != port:
                    continue
                raw = bytes.fromhex(addr)
                if width == 8:
                    out.append(".".join(str(b) for b in reversed(raw)))
                else:  # four little-endian 32-bit words
                    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
                    out.append(b"".join(words).hex())
    return out


def daemon_env(c):
    env, _ = dir_env(c, SORACAM_SCHEDULE="0 0 0 1 1 *", SORACAM_CATCHUP_WINDOW="off")
    return env


def assert_listens_only(port, want, what):
    got = listeners(port)
    check(got == [want], "%s: listening sockets on port %d are %r, want only %s"
          % (what, port, got, want))


def test_daemon_listen_port_alone_binds_loopback(c):
    for form in ("%d", ":%d"):
        port = free_port()
        d = Proc(c, ["daemon", "--listen", form % port], daemon_env(c))
        try:
            d.wait_log(r"health and metrics on http://127\.0\.0\.1:%d/healthz" % port, 20)
            assert_listens_only(port, "127.0.0.1", "daemon --listen " + form % port)
            st, _ = get("http://127.0.0.1:%d/healthz" % port)
            check(st in (200, 503), "/healthz answered %s" % st)
        finally:
            rc = d.stop()
        check(rc == 0, "daemon exit %s" % rc)


def test_daemon_listen_with_address_binds_that_address(c):
    port = free_port()
    env = dict(daemon_env(c), SORACAM_LISTEN="127.0.0.2:%d" % port)
    d = Proc(c, ["daemon"], env)
    try:
        d.wait_log(r"health and metrics on http://127\.0\.0\.2:%d/" % port, 20)
        assert_listens_only(port, "127.0.0.2", "SORACAM_LISTEN=127.0.0.2:%d" % port)
    finally:
        d.stop()


def test_serve_binds_loopback(c):
    from it_daemon import start_serve
    d, base = start_serve(c)
    try:
        port = int(base.rsplit(":", 1)[1])
        assert_listens_only(port, "127.0.0.1", "serve")
    finally:
        d.stop()
