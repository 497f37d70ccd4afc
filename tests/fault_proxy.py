"""A storage fault proxy for the integration cases: an HTTP/1.1 proxy on a free loopback port in
front of a storage endpoint (Azurite's blob port, the fake DFS), whose behaviour a case changes
at run time. Standard library only.

    proxy = FaultProxy(upstream_port, seed=7)
    try:
        conn = "...;BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;" % proxy.port
        proxy.set("status:503")                               # every request answered 503
        proxy.set(["status:503", "reset_before", "reset_after", "status_after:500"], p=0.5)
        proxy.set("pass")
    finally:
        proxy.stop()                                          # threads joined, sockets closed

Modes (one, or a list to pick from at random for each faulted request):
  pass               forward the request and its answer unchanged
  status:NNN         answer NNN (an Azure error body) without forwarding
  reset_before       reset the client's connection without forwarding (nothing written)
  reset_after        forward, read the answer, then reset the client's connection: the write
                     took effect but the client never learns it
  status_after:NNN   forward, then answer NNN instead of the real answer (the write took effect)
  hang               read the request and never answer, until the mode changes (then the
                     connection is reset, nothing forwarded) or the proxy stops
  down               refuse connections: the listening socket is closed (connect() gets
                     ECONNREFUSED) and open connections are reset; reopened on the same port
                     when the mode changes

With p < 1 each request is faulted with probability p (seeded generator) and passes otherwise.
When the upstream itself is unreachable, the client's connection is reset.

Requests are parsed enough to forward them one by one on keep-alive connections: bodies with
Content-Length or chunked transfer coding, `Expect: 100-continue` (answered by the proxy, the
header not forwarded), answers to HEAD, 1xx/204/304 answers, chunked answers and answers
delimited by the upstream closing. Every head is capped at 64 KiB and every body at 64 MiB.
"""
import random
import socket
import struct
import threading
import time

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
IO_TIMEOUT = 120  # a backstop only: stop() unblocks every thread at once

ERROR_CODES = {500: "InternalError", 503: "ServerBusy"}


class ProxyClosed(Exception):
    """The peer closed, or the proxy is stopping."""


class Reader:
    """Buffered reading from a socket, with caps."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ProxyClosed("peer closed")
        self.buf += data

    def line(self):
        """One line with its CRLF; ProxyClosed at a clean end before any byte."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                out, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return out
            if len(self.buf) > MAX_HEAD:
                raise ValueError("line over %d bytes" % MAX_HEAD)
            self._fill()

    def exact(self, n):
        if n > MAX_BODY:
            raise ValueError("body over %d bytes" % MAX_BODY)
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def until_close(self):
        out = self.buf
        self.buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            out += data
            if len(out) > MAX_BODY:
                raise ValueError("body over %d bytes" % MAX_BODY)
        return out


def read_head(r):
    """(first line, [(name, value)], raw header lines) of a request or answer."""
    first = r.line()
    while first in (b"\r\n", b"\n"):  # tolerate a stray CRLF between messages
        first = r.line()
    headers, raw, total = [], [], len(first)
    while True:
        h = r.line()
        total += len(h)
        if total > MAX_HEAD:
            raise ValueError("head over %d bytes" % MAX_HEAD)
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers.append((k.strip().lower(), v.strip()))
        raw.append(h)
    return first, headers, raw


def header(headers, name):
    for k, v in headers:
        if k == name:
            return v
    return None


def read_body(r, headers, head_only=False, no_body=False):
    """The body as it was on the wire (chunked coding kept) and whether it ended by close."""
    if head_only or no_body:
        return b"", False
    te = (header(headers, "transfer-encoding") or "").lower()
    if "chunked" in te:
        out = b""
        while True:
            size_line = r.line()
            out += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            if len(out) + size > MAX_BODY:
                raise ValueError("body over %d bytes" % MAX_BODY)
            if size == 0:
                while True:  # trailers, then the empty line
                    t = r.line()
                    out += t
                    if t in (b"\r\n", b"\n"):
                        return out, False
            out += r.exact(size + 2)
    cl = header(headers, "content-length")
    if cl is not None:
        return r.exact(int(cl)), False
    return None, True  # delimited by close (answers only)


def wants_close(first, headers):
    conn = (header(headers, "connection") or "").lower()
    return "close" in conn or first.startswith(b"HTTP/1.0") and "keep-alive" not in conn


def rst(sock):
    """Closes sock with a TCP reset (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def parse_mode(m):
    if m in ("pass", "reset_before", "reset_after", "hang", "down"):
        return m
    kind, _, code = m.partition(":")
    if kind in ("status", "status_after") and code.isdigit() and 100 <= int(code) <= 599:
        return m
    raise ValueError("unknown fault mode %r" % m)


class FaultProxy:
    """The proxy. Counters: requests (seen), forwarded (sent upstream), faults {mode: n},
    refused_connections (closed while down), upstream_errors (upstream unreachable)."""

    def __init__(self, upstream_port, seed=0, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.rng = random.Random(seed)
        self.seed = seed
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.modes = ["pass"]
        self.p = 1.0
        self.generation = 0  # bumped by every set(): hung requests notice it
        self.stopping = False
        self.requests = 0
        self.forwarded = 0
        self.faults = {}
        self.upstream_errors = 0
        self.socks = set()
        self.threads = set()
        self.port = None
        self.listener = None
        self._listen()
        self.acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy-accept",
                                         daemon=True)
        self.acceptor.start()

    # Control --------------------------------------------------------------------------
    def set(self, modes, p=1.0):
        """Sets the mode (a string) or the modes to choose from (a list), each request being
        faulted with probability p."""
        ms = [parse_mode(m) for m in ([modes] if isinstance(modes, str) else list(modes))]
        if not ms or not 0.0 <= p <= 1.0:
            raise ValueError("no mode, or p out of [0, 1]")
        with self.lock:
            was_down = self.modes == ["down"] and self.p >= 1.0
            self.modes, self.p = ms, p
            self.generation += 1
            down = ms == ["down"] and p >= 1.0
            self.changed.notify_all()
        if down and not was_down:
            self._go_down()
        elif was_down and not down:
            self._listen()

    def total_faults(self):
        with self.lock:
            return sum(self.faults.values())

    def stats(self):
        with self.lock:
            return {"requests": self.requests, "forwarded": self.forwarded,
                    "faults": dict(self.faults), "upstream_errors": self.upstream_errors}

    def stop(self):
        """Stops accepting, resets every connection and joins every thread; idempotent."""
        with self.lock:
            self.stopping = True
            self.changed.notify_all()
            socks = list(self.socks)
            lst, self.listener = self.listener, None
        if lst is not None:
            self._close_listener(lst)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.acceptor.join(10)
        deadline = time.monotonic() + 10
        while True:
            with self.lock:
                threads = list(self.threads)
            if not threads:
                break
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                break
        with self.lock:
            left = [t.name for t in self.threads if t.is_alive()]
            socks = list(self.socks)
            self.socks.clear()
        for s in socks:
            rst(s)
        if self.acceptor.is_alive() or left:
            raise RuntimeError("fault proxy threads still running: %r" % left)

    # Listening ------------------------------------------------------------------------
    def _listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 10
        while True:
            try:
                s.bind(("127.0.0.1", self.port or 0))
                break
            except OSError:
                if self.port is None or time.monotonic() > deadline:
                    s.close()
                    raise
                time.sleep(0.05)
        s.listen(128)
        s.settimeout(0.1)
        self.port = s.getsockname()[1]
        with self.lock:
            self.listener = s

    def _close_listener(self, s):
        # shutdown() stops the listening at once, even while the accepting thread waits in
        # poll() on it (a bare close() would leave it listening until that poll returns).
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass

    def _go_down(self):
        with self.lock:
            lst, self.listener = self.listener, None
            socks = list(self.socks)
        if lst is not None:
            self._close_listener(lst)
        for s in socks:  # open keep-alive connections die with the server
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept_loop(self):
        while True:
            with self.lock:
                if self.stopping:
                    return
                lst = self.listener
            if lst is None:
                time.sleep(0.05)
                continue
            try:
                conn, _ = lst.accept()
            except socket.timeout:
                continue
            except OSError:
                time.sleep(0.02)  # closed by _go_down or stop
                continue
            conn.settimeout(IO_TIMEOUT)
            with self.lock:
                if self.stopping or self.listener is None:
                    rst(conn)
                    continue
                t = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                     name="fault-proxy-conn")
                self.socks.add(conn)
                self.threads.add(t)
            t.start()

    # One client connection --------------------------------------------------------------
    def _pick(self):
        with self.lock:
            self.requests += 1
            if self.modes == ["pass"] or self.rng.random() >= self.p:
                return "pass", self.generation
            m = self.rng.choice(self.modes)
            if m != "pass":
                self.faults[m] = self.faults.get(m, 0) + 1
            return m, self.generation

    def _forget(self, *socks):
        with self.lock:
            for s in socks:
                if s is not None:
                    self.socks.discard(s)

    def _serve(self, conn):
        up = None
        upr = None
        graceful = False  # a normal end of the connection: close, not reset
        try:
            r = Reader(conn)
            while True:
                try:
                    first, headers, raw = read_head(r)
                except ProxyClosed:
                    graceful = True
                    return
                method = first.split(b" ", 1)[0].upper()
                expect = (header(headers, "expect") or "").lower() == "100-continue"
                mode, gen = self._pick()
                if mode == "down":
                    mode = "reset_before"  # a request that raced the switch to down
                if mode == "hang":
                    with self.lock:
                        while not self.stopping and self.generation == gen:
                            self.changed.wait(0.5)
                    return  # reset in finally: nothing was forwarded
                if expect and mode != "reset_before":
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body, _ = read_body(r, headers)
                if body is None:
                    body = b""
                close_after = wants_close(first, headers)
                if mode == "reset_before":
                    return
                if mode.startswith("status:"):
                    self._answer(conn, int(mode.split(":")[1]), method == b"HEAD")
                    if close_after:
                        graceful = True
                        return
                    continue
                # Forward (pass, reset_after, status_after:NNN).
                head = first + b"".join(h for h in raw
                                        if not h.lower().startswith(b"expect:")) + b"\r\n"
                try:
                    if up is None:
                        up = socket.create_connection(self.upstream, timeout=IO_TIMEOUT)
                        with self.lock:
                            if self.stopping:
                                return
                            self.socks.add(up)
                        upr = Reader(up)
                    up.sendall(head + body)
                    with self.lock:
                        self.forwarded += 1
                    while True:
                        afirst, aheaders, araw = read_head(upr)
                        status = int(afirst.split(b" ")[1])
                        if not 100 <= status < 200 or status == 101:
                            break
                        # an interim answer: passed on only when the client asked for it
                    abody, by_close = read_body(upr, aheaders, head_only=method == b"HEAD",
                                                no_body=status in (204, 304))
                    if by_close:
                        abody = upr.until_close()
                except (OSError, ProxyClosed, ValueError, IndexError):
                    with self.lock:
                        self.upstream_errors += 1
                    return  # the upstream is gone: the client sees a reset
                up_close = by_close or wants_close(afirst, aheaders)
                if up_close:
                    self._forget(up)
                    rst(up)
                    up = upr = None
                if mode == "reset_after":
                    return
                if mode.startswith("status_after:"):
                    self._answer(conn, int(mode.split(":")[1]), method == b"HEAD")
                else:
                    conn.sendall(afirst + b"".join(araw) + b"\r\n" + abody)
                if by_close or close_after or (up_close and
                                               not mode.startswith("status_after:")):
                    graceful = True
                    return
        except (OSError, ValueError, IndexError, ProxyClosed):
            return
        finally:
            self._forget(conn, up)
            if graceful:
                try:
                    conn.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                conn.close()
            else:
                rst(conn)
            if up is not None:
                rst(up)
            with self.lock:
                self.threads.discard(threading.current_thread())

    def _answer(self, conn, status, head_only):
        code = ERROR_CODES.get(status, "InjectedFault")
        body = ("<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>%s</Code><Message>"
                "injected by the test's fault proxy</Message></Error>" % code).encode()
        conn.sendall(b"HTTP/1.1 %d Injected\r\nContent-Type: application/xml\r\n"
                     b"x-ms-error-code: %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (status, code.encode(), len(body), b"" if head_only else body))
