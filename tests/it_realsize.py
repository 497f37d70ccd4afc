"""Integration cases at real image sizes (300 KB stills, set explicitly through the fake's
image_bytes): a rerun finds the stored slot on every sink, and an upload whose answer was lost
is recognised as stored (409/412, then a lookup of the object's MD5), whatever the size; and a
complete JPEG with bytes after its end-of-image marker is stored as downloaded, flagged."""
import http.client
import http.server
import os
import socket
import socketserver
import threading

from harness import AZURITE_KEY, DEVICES, check, iso, md5, slot_path
from it_azure import ACCOUNT, assert_dfs_stored, dfs, dfs_env
from it_run import assert_stored, past_slot

IMAGE_BYTES = 300000


def _real_size(c):
    c.fake.config(image_bytes=IMAGE_BYTES)


def _stored_at_real_size(data):
    check(len(data) >= IMAGE_BYTES * 9 // 10, "the image is %d bytes, not about %d"
          % (len(data), IMAGE_BYTES))


def _rerun_is_already_stored(c, slot, env):
    before = c.fake.posts()
    r = c.run(["run", "--at", iso(slot)], env)
    check(r.rc == 0, "second run failed: %r" % r)
    check("already stored" in r.err, "no 'already stored' report: %r" % r)
    check("larger than" not in r.err, "a size cap refused a storage answer: %r" % r)
    check(c.fake.posts() == before, "the second run exported again")


def test_realsize_blob_rerun_is_already_stored(c):
    _real_size(c)
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 0, "first run failed: %r" % r)
    _stored_at_real_size(assert_stored(c, DEVICES[0], slot))
    _rerun_is_already_stored(c, slot, c.env())


def test_realsize_dfs_rerun_is_already_stored(c):
    d = dfs(c)
    _real_size(c)
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)], dfs_env(c, d))
    check(r.rc == 0, "first run failed: %r" % r)
    _stored_at_real_size(assert_dfs_stored(c, d, DEVICES[0], slot))
    _rerun_is_already_stored(c, slot, dfs_env(c, d))


def test_realsize_dir_rerun_is_already_stored(c):
    _real_size(c)
    slot = past_slot()
    out = os.path.join(c.tmp, "captures")
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_CONTAINER_NAME=None,
                SORACAM_SINK="dir:" + out)
    r = c.run(["run", "--at", iso(slot)], env)
    check(r.rc == 0, "first run failed: %r" % r)
    path = os.path.join(out, slot_path(slot, DEVICES[0]))
    with open(path, "rb") as f:
        data = f.read()
    check(md5(data) == c.fake.export_for(DEVICES[0], slot)["md5"], "stored bytes differ")
    _stored_at_real_size(data)
    _rerun_is_already_stored(c, slot, env)


def test_realsize_dfs_lost_answers_are_recognised(c):
    """The flush takes effect but its answer is lost: the retried flush is refused and the
    lookup (a HEAD on a 300 KB file) shows the file is complete and ours."""
    d = dfs(c)
    _real_size(c)
    slot = past_slot()
    d.faults({"op": "flush", "apply": True, "count": 1})
    r = c.run(["run", "--at", iso(slot)], dfs_env(c, d))
    check(r.rc == 0, "run failed: %r" % r)
    _stored_at_real_size(assert_dfs_stored(c, d, DEVICES[0], slot))
    check([e["status"] for e in d.log("flush")] == ["dropped", 412], "flushes %r"
          % d.log("flush"))
    check(not d.log("delete"), "deleted a complete file")
    check(c.fake.posts() == 1, "exported more than once")


# ---- a lost upload answer in front of Azurite ------------------------------------------

class _DropProxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Forwards every request to Azurite and relays the answer, except that the first PUT of
    an image (not soracam-lake's own records, not the container) is forwarded and its answer
    dropped: the upload takes effect, the client never hears so."""
    daemon_threads = True

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.drops_left = 1
        self.seen = []  # (method, path, status or "dropped")
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _DropHandler)


class _DropHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        up = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        try:
            hdrs = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            up.request(self.command, self.path, body=body, headers=hdrs)
            resp = up.getresponse()
            out = resp.read()
            status, rh = resp.status, resp.getheaders()
        finally:
            up.close()
        image_put = (self.command == "PUT" and "/.soracam-lake/" not in self.path
                     and "restype=container" not in self.path)
        with self.server.lock:
            drop = image_put and self.server.drops_left > 0
            if drop:
                self.server.drops_left -= 1
            self.server.seen.append((self.command, self.path.split("?")[0],
                                     "dropped" if drop else status))
        if drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(status)
        for k, v in rh:
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "date",
                                 "server"):
                self.send_header(k, v)
        if self.command == "HEAD":  # the object's size, describing a body never sent
            self.send_header("Content-Length", dict((k.lower(), v) for k, v in rh)
                             .get("content-length", "0"))
        else:
            self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward


def test_realsize_blob_lost_upload_answer_then_409_is_stored(c):
    _real_size(c)
    proxy = _DropProxy(c.h.azurite_port)
    t = threading.Thread(target=proxy.serve_forever, daemon=True)
    t.start()
    try:
        conn = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint="
                "http://127.0.0.1:%d/%s;" % (ACCOUNT, AZURITE_KEY, proxy.server_address[1],
                                             ACCOUNT))
        slot = past_slot()
        r = c.run(["run", "--at", iso(slot)], c.env(AZURE_STORAGE_CONNECTION_STRING=conn))
        check(r.rc == 0, "run failed: %r" % r)
        check("larger than" not in r.err, "a size cap refused a storage answer: %r" % r)
        _stored_at_real_size(assert_stored(c, DEVICES[0], slot))
        name = "/%s/%s/%s" % (ACCOUNT, c.container, slot_path(slot, DEVICES[0]))
        puts = [s for m, p, s in proxy.seen if m == "PUT" and p == name]
        check(puts[:1] == ["dropped"] and len(puts) == 2 and puts[1] in (409, 412),
              "image uploads %r (want the answer of the first lost, then 409/412)" % puts)
        heads = [s for m, p, s in proxy.seen if m == "HEAD" and p == name]
        check(200 in heads, "no lookup of the object after the conflict: %r" % heads)
        check(c.fake.posts() == 1, "exported more than once")
    finally:
        proxy.shutdown()
        proxy.server_close()
        t.join(10)


# ---- a complete JPEG with bytes after its end-of-image marker ----------------------------

TRAILER = b"\0\0\0\0trailing-bytes\n"


class _TrailerProxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Stands in front of the fake SORACOM API: relays every request, points the image URLs
    in its answers at itself, and serves each image with TRAILER appended (a complete JPEG
    followed by bytes after its EOI, as some encoders and proxies produce)."""
    daemon_threads = True

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.images = 0
        super().__init__(("127.0.0.1", 0), _TrailerHandler)


class _TrailerHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        up = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        try:
            hdrs = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            up.request(self.command, self.path, body=body, headers=hdrs)
            resp = up.getresponse()
            out = resp.read()
            status, rh = resp.status, resp.getheaders()
        finally:
            up.close()
        if self.path.startswith("/_img/") and status == 200:
            out += TRAILER
            self.server.images += 1
        else:
            out = out.replace(b"//127.0.0.1:%d/_img/" % self.server.upstream_port,
                              b"//127.0.0.1:%d/_img/" % self.server.server_address[1])
        self.send_response(status)
        for k, v in rh:
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "date",
                                 "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_PUT = do_POST = do_DELETE = _forward


def test_jpeg_with_trailing_bytes_is_stored_as_downloaded_and_flagged(c):
    import json
    proxy = _TrailerProxy(c.fake.port)
    t = threading.Thread(target=proxy.serve_forever, daemon=True)
    t.start()
    try:
        slot = past_slot()
        out = os.path.join(c.tmp, "captures")
        env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_CONTAINER_NAME=None,
                    SORACAM_SINK="dir:" + out,
                    SORACOM_API_ENDPOINT="http://127.0.0.1:%d" % proxy.server_address[1])
        r = c.run(["run", "--at", iso(slot)], env)
        check(r.rc == 0, "run failed: %r" % r)
        check(proxy.images == 1, "want one download through the proxy, got %d" % proxy.images)
        path = os.path.join(out, slot_path(slot, DEVICES[0]))
        with open(path, "rb") as f:
            data = f.read()
        served = c.fake.export_for(DEVICES[0], slot)
        check(data.endswith(TRAILER) and md5(data[:-len(TRAILER)]) == served["md5"],
              "not stored as downloaded (image plus its trailing bytes)")
        side = json.load(open(path + ".json"))
        check(side["metadata"].get("jpeg_trailing_bytes") == str(len(TRAILER)),
              "no jpeg_trailing_bytes flag: %r" % side["metadata"])
        check(("%d bytes after the JPEG's end-of-image marker" % len(TRAILER)) in r.err,
              "no warning: %r" % r)
        check(c.fake.posts() == 1, "exported more than once")
    finally:
        proxy.shutdown()
        proxy.server_close()
        t.join(10)
