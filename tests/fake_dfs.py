#!/usr/bin/env python3
"""A fake Azure Data Lake Storage Gen2 (DFS) endpoint and managed-identity token endpoints.

Azurite has no DFS endpoint, so the DFS sink is tested against this. It keeps the service's
semantics that matter for a writer:

* file systems: PUT ?resource=filesystem (201, 409 FilesystemAlreadyExists), HEAD, DELETE;
* paths: PUT ?resource=file|directory with If-None-Match / If-Match (409 PathAlreadyExists,
  412 ConditionNotMet), parents created implicitly; x-ms-properties must be
  "name=base64(value),..." (400 InvalidHeaderValue / InvalidPropertyName otherwise);
* PATCH ?action=append&position=P: P must be where the uploaded data ends (400
  InvalidFlushPosition otherwise), Content-MD5 is checked (400 Md5Mismatch); appended data
  stays invisible until flushed; appends do not change the ETag;
* PATCH ?action=flush&position=P: P must equal the committed length plus the contiguous
  uploaded data (400 InvalidFlushPosition), Content-Length must be 0 (400
  ContentLengthMustBeZero); x-ms-content-type and x-ms-content-md5 are stored, and cleared
  when absent (as Azure does); If-Match is honoured; close=true is recorded;
* HEAD / GET return the properties (Content-Length, Content-Type, Content-MD5, ETag,
  x-ms-resource-type, x-ms-properties, and the blob view x-ms-meta-*); DELETE with If-Match;
* errors are JSON {"error":{"code","message"}} with an x-ms-error-code header;
* authorisation: SharedKey verified the way the service verifies it (the string-to-sign is
  rebuilt from the request as received: standard headers, canonicalized x-ms-* headers,
  canonicalized resource with the account twice for path-style URLs, decoded and sorted query
  parameters) -> 403 AuthenticationFailed on a mismatch or a date more than 15 minutes off;
  Bearer tokens issued by the fake token endpoints (until they expire) or configured ones
  -> 401 InvalidAuthenticationInfo otherwise; a SAS whose sig equals a configured value.

Storage URLs are path-style: http://127.0.0.1:PORT/<account>/<filesystem>/<path>.

Token endpoints (the same server):
  GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...  (IMDS; needs the
      header "Metadata: true")
  GET /msi/token?api-version=2019-08-01&resource=...  (App Service / Functions; needs
      X-IDENTITY-HEADER equal to the configured identity header)
Both issue a new token per request, valid for the configured lifetime.

Control API (JSON):
  POST /_fake/reset                      forget everything (keeps account and key)
  POST /_fake/config  {"tokens":[...], "sas_sig": "...", "identity_header": "...",
                       "client_id": "...", "token_lifetime": 3600,
                       "token_fail": {"status": 500, "count": N (-1: always)}}
  POST /_fake/faults  [{"op": "append|flush|create|delete|head|filesystem", "status": 503,
                        "code": "ServerBusy", "count": 1, "apply": false}]
                      status faults answer instead of acting; "apply": true acts first and
                      then drops the connection without an answer (an ambiguous failure)
  POST /_fake/seed    {"fs", "path", "data_b64", "flushed": true, "properties": {...},
                       "content_type", "content_md5"}
  GET  /_fake/state   file systems, paths and their properties (decoded)
  GET  /_fake/data/<fs>/<path>  the committed bytes of a file
  GET  /_fake/log     requests received: method, path, query, op, status, auth
  GET  /_fake/tokens  {"issued": [...], "imds": n, "appservice": n}

Run: fake_dfs.py --port-file FILE [--account devstoreaccount1] [--key BASE64]
                   [--tls-cert PEM --tls-key PEM]   (HTTPS: storage, token endpoints, control)
"""
import argparse
import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import os
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STANDARD_HEADERS = ["Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
                    "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
                    "If-Unmodified-Since", "Range"]
MAX_SKEW_S = 15 * 60
MAX_BODY = 64 * 1024 * 1024
STORAGE_RESOURCE = "https://storage.azure.com/"

MESSAGES = {
    "AuthenticationFailed": "Server failed to authenticate the request. Make sure the value of "
                            "Authorization header is formed correctly including the signature.",
    "InvalidAuthenticationInfo": "Server failed to authenticate the request. Please refer to the "
                                 "information in the www-authenticate header.",
    "NoAuthenticationInformation": "Server failed to authenticate the request. Please refer to "
                                   "the information in the www-authenticate header.",
    "FilesystemAlreadyExists": "The specified filesystem already exists.",
    "FilesystemNotFound": "The specified filesystem does not exist.",
    "PathAlreadyExists": "The specified path already exists.",
    "PathNotFound": "The specified path does not exist.",
    "PathConflict": "The specified path, or an element of the path, exists and its resource "
                    "type is invalid for this operation.",
    "ConditionNotMet": "The condition specified using HTTP conditional header(s) is not met.",
    "InvalidFlushPosition": "The uploaded data is not contiguous or the position query "
                            "parameter value is not equal to the length of the file after "
                            "appending the uploaded data.",
    "ContentLengthMustBeZero": "The Content-Length request header must be zero.",
    "Md5Mismatch": "The MD5 value specified in the request did not match with the MD5 value "
                   "calculated by the server.",
    "InvalidHeaderValue": "The value for one of the HTTP headers is not in the correct format.",
    "InvalidPropertyName": "The property name contains invalid characters.",
    "InvalidQueryParameterValue": "Value for one of the query parameters specified in the "
                                  "request URI is invalid.",
    "MissingRequiredHeader": "An HTTP header that's mandatory for this request is not "
                             "specified.",
    "DirectoryNotEmpty": "The recursive query parameter value must be true to delete a "
                         "non-empty directory.",
    "InvalidUri": "The request URI is invalid.",
    "UnsupportedHttpVerb": "The resource doesn't support the specified HTTP verb.",
}


class Fail(Exception):
    def __init__(self, status, code, message=None, headers=None):
        super().__init__(code)
        self.status, self.code = status, code
        self.message = message or MESSAGES.get(code, code)
        self.headers = headers or {}


def now_http():
    return email.utils.formatdate(usegmt=True)


class Node:
    """A file or directory."""

    def __init__(self, kind):
        self.kind = kind  # "file" or "directory"
        self.committed = b""
        self.uploaded = bytearray()  # appended, not yet flushed
        self.properties = {}  # name -> decoded value
        self.content_type = None
        self.content_md5 = None  # base64, as given at flush
        self.closed = False
        self.touch()

    def touch(self):
        self.etag = '"0x8D%s"' % secrets.token_hex(7).upper()
        self.last_modified = now_http()


class State:
    def __init__(self, account, key):
        self.account = account
        self.key = key
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.filesystems = {}  # name -> {path: Node}
        self.log = []
        self.faults = []
        self.tokens = {}  # token -> expiry (epoch s)
        self.configured_tokens = set()
        self.sas_sig = None
        self.identity_header = None
        self.client_id = None
        self.token_lifetime = 3600
        self.token_fail = None
        self.imds_count = 0
        self.appservice_count = 0


# ---- SharedKey, recomputed from the request as received ----

def header_sort_key(name):
    """The service orders x-ms- header names with a culture-aware comparison: hyphens are
    ignored at the first level, case is folded, punctuation sorts before digits and digits
    before letters; byte order breaks ties."""
    primary = []
    for ch in name:
        if ch in "-'":
            continue
        if ch.isalpha():
            primary.append((2, ch.lower()))
        elif ch.isdigit():
            primary.append((1, ch))
        else:
            primary.append((0, ch))
    return (primary, name)


def canonical_headers(headers):
    groups = {}
    for name, value in headers.items():
        lname = name.lower().strip()
        if lname.startswith("x-ms-"):
            groups.setdefault(lname, []).append(value.strip())
    out = ""
    for lname in sorted(groups, key=header_sort_key):
        out += "%s:%s\n" % (lname, ",".join(groups[lname]))
    return out


def canonical_resource(account, raw_path, raw_query):
    res = "/" + account + (raw_path or "/")
    params = {}
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        name, _, value = part.partition("=")
        params.setdefault(name.lower(), []).append(urllib.parse.unquote(value))
    for name in sorted(params):
        res += "\n%s:%s" % (name, ",".join(sorted(params[name])))
    return res


def string_to_sign(method, headers, account, raw_path, raw_query):
    parts = [method]
    for h in STANDARD_HEADERS:
        values = headers.get_all(h) or []
        v = ",".join(x.strip() for x in values)
        if h == "Content-Length" and v == "0":
            v = ""
        parts.append(v)
    return "\n".join(parts) + "\n" + canonical_headers(_pairs(headers)) + \
        canonical_resource(account, raw_path, raw_query)


class _pairs:
    """Adapts email.message headers (repeated names kept) to .items()."""

    def __init__(self, headers):
        self.h = headers

    def items(self):
        return list(self.h.items())


# ---- the server ----

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-dfs/1"

    def log_message(self, fmt, *args):
        pass

    # Plumbing -------------------------------------------------------------------------
    @property
    def st(self):
        return self.server.state

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise Fail(413, "RequestBodyTooLarge", "The request body is too large.")
        return self.rfile.read(n) if n else b""

    def send(self, status, body=b"", headers=None, head=False):
        self.send_response(status)
        hdrs = {"x-ms-request-id": secrets.token_hex(8), "x-ms-version": "2021-08-06",
                "Date": now_http()}
        hdrs.update(headers or {})
        if "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})

    def send_error_json(self, f, head=False):
        body = json.dumps({"error": {"code": f.code, "message": "%s\nRequestId:%s\nTime:%s" % (
            f.message, secrets.token_hex(8), now_http())}}).encode()
        hdrs = {"x-ms-error-code": f.code, "Content-Type": "application/json;charset=utf-8"}
        hdrs.update(f.headers)
        if head:
            hdrs["Content-Length"] = "0"
            body = b""
        self.send(f.status, body, hdrs, head=head)

    def split(self):
        path, _, query = self.path.partition("?")
        return path, query

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        raw_path, raw_query = self.split()
        if raw_path.startswith("/_fake/"):
            return self.control(method, raw_path, raw_query)
        if raw_path == "/metadata/identity/oauth2/token":
            return self.token(method, raw_query, imds=True)
        if raw_path.rstrip("/").lower() == "/msi/token":
            return self.token(method, raw_query, imds=False)
        entry = {"method": method, "path": urllib.parse.unquote(raw_path), "query": raw_query,
                 "op": None, "status": None, "auth": None}
        try:
            body = self.body() if method in ("PUT", "PATCH", "POST", "DELETE") else b""
            q = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
            entry["op"] = op_name(method, q)
            with self.st.lock:
                self.st.log.append(entry)
                entry["auth"] = self.authorise(method, raw_path, raw_query, q)
                # Injected faults are for the images under test, not soracam-lake's own
                # records (.soracam-lake/: catch-up markers, the export journal).
                fault = (None if "/.soracam-lake/" in raw_path
                         else take_fault(self.st, entry["op"]))
                if fault and not fault.get("apply"):
                    raise Fail(fault.get("status", 500), fault.get("code", "InternalError"),
                               "Injected fault.")
                status, hdrs, out = self.storage(method, raw_path, q, body)
            if fault and fault.get("apply"):
                entry["status"] = "dropped"
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            entry["status"] = status
            self.send(status, out, hdrs, head=method == "HEAD")
        except Fail as f:
            entry["status"] = f.status
            self.send_error_json(f, head=method == "HEAD")

    # Authorisation --------------------------------------------------------------------
    def authorise(self, method, raw_path, raw_query, q):
        st = self.st
        auth = self.headers.get("Authorization")
        if not self.headers.get("x-ms-version"):
            raise Fail(400, "MissingRequiredHeader")
        if auth and auth.startswith("SharedKey "):
            account, _, sig = auth[len("SharedKey "):].partition(":")
            date = self.headers.get("x-ms-date") or self.headers.get("Date")
            try:
                t = email.utils.parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError):
                raise Fail(403, "AuthenticationFailed", MESSAGES["AuthenticationFailed"] +
                           " The Date header is missing or malformed.")
            if abs(t - time.time()) > MAX_SKEW_S:
                raise Fail(403, "AuthenticationFailed", MESSAGES["AuthenticationFailed"] +
                           " Request date header too old.")
            sts = string_to_sign(method, self.headers, st.account, raw_path, raw_query)
            want = base64.b64encode(hmac.new(st.key, sts.encode("utf-8"),
                                             hashlib.sha256).digest()).decode()
            if account != st.account or not hmac.compare_digest(want, sig):
                raise Fail(403, "AuthenticationFailed", MESSAGES["AuthenticationFailed"] +
                           " The MAC signature found in the HTTP request is not the same as "
                           "any computed signature.")
            return "sharedkey"
        if auth and auth.startswith("Bearer "):
            tok = auth[len("Bearer "):].strip()
            exp = st.tokens.get(tok)
            if tok in st.configured_tokens or (exp is not None and exp > time.time()):
                return "bearer"
            raise Fail(401, "InvalidAuthenticationInfo", headers={
                "WWW-Authenticate": 'Bearer authorization_uri=https://login.microsoftonline.com/'
                                    'tenant/oauth2/authorize resource_id=https://storage.azure.com'})
        if "sig" in q:
            if st.sas_sig is not None and hmac.compare_digest(q["sig"], st.sas_sig):
                return "sas"
            raise Fail(403, "AuthenticationFailed", MESSAGES["AuthenticationFailed"] +
                       " Signature did not match.")
        raise Fail(401, "NoAuthenticationInformation")

    # Storage --------------------------------------------------------------------------
    def locate(self, raw_path):
        segs = raw_path.split("/")
        if len(segs) < 3 or segs[1] != self.st.account:
            raise Fail(400, "InvalidUri")
        fs = urllib.parse.unquote(segs[2])
        path = urllib.parse.unquote("/".join(segs[3:])).strip("/")
        return fs, path

    def storage(self, method, raw_path, q, body):
        fs, path = self.locate(raw_path)
        if not path:
            return self.filesystem(method, fs, q)
        files = self.st.filesystems.get(fs)
        if files is None:
            raise Fail(404, "FilesystemNotFound")
        node = files.get(path)
        if method == "PUT":
            return self.create(files, path, node, q, body)
        if method == "PATCH":
            if node is None:
                raise Fail(404, "PathNotFound")
            action = q.get("action")
            if action == "append":
                return self.append(node, q, body)
            if action == "flush":
                return self.flush(node, q, body)
            raise Fail(400, "InvalidQueryParameterValue")
        if method in ("HEAD", "GET"):
            if node is None:
                raise Fail(404, "PathNotFound")
            return 200, self.properties(node), node.committed if method == "GET" else b""
        if method == "DELETE":
            if node is None:
                raise Fail(404, "PathNotFound")
            self.conditions(node)
            children = [p for p in files if p.startswith(path + "/")]
            if children and q.get("recursive") != "true":
                raise Fail(409, "DirectoryNotEmpty")
            for p in children + [path]:
                del files[p]
            return 200, {}, b""
        raise Fail(405, "UnsupportedHttpVerb")

    def filesystem(self, method, fs, q):
        # The Blob API's view of a file system (?restype=container) is accepted too: the
        # Python SDK creates file systems that way.
        if q.get("resource") != "filesystem" and q.get("restype") != "container":
            raise Fail(400, "InvalidQueryParameterValue")
        exists = fs in self.st.filesystems
        if method == "PUT":
            if exists:
                raise Fail(409, "FilesystemAlreadyExists")
            self.st.filesystems[fs] = {}
            return 201, {"ETag": '"0x8D%s"' % secrets.token_hex(7).upper(),
                         "Last-Modified": now_http()}, b""
        if method == "GET" and q.get("resource") == "filesystem":
            if not exists:
                raise Fail(404, "FilesystemNotFound")
            return self.list_paths(self.st.filesystems[fs], q)
        if method in ("HEAD", "GET"):
            if not exists:
                raise Fail(404, "FilesystemNotFound")
            return 200, {}, b""
        if method == "DELETE":
            if not exists:
                raise Fail(404, "FilesystemNotFound")
            del self.st.filesystems[fs]
            return 202, {}, b""
        raise Fail(405, "UnsupportedHttpVerb")

    def list_paths(self, files, q):
        """List Paths: GET /{fs}?resource=filesystem&recursive=&directory=&continuation=
        &maxResults=, JSON {"paths": [...]}, paged with x-ms-continuation. Directories are
        implied by the files under them, as in the service."""
        directory = q.get("directory", "").strip("/")
        recursive = q.get("recursive") == "true"
        if directory and directory not in files and not any(
                p.startswith(directory + "/") for p in files):
            raise Fail(404, "PathNotFound")
        base = directory + "/" if directory else ""
        entries = {}
        for p, node in files.items():
            if not p.startswith(base):
                continue
            rest = p[len(base):]
            if not recursive and "/" in rest:
                d = base + rest.split("/", 1)[0]
                entries[d] = {"name": d, "isDirectory": "true"}
                continue
            e = {"name": p, "contentLength": str(len(node.committed)),
                 "etag": node.etag, "lastModified": now_http()}
            if node.kind == "directory":
                e["isDirectory"] = "true"
                e["contentLength"] = "0"
            entries[p] = e
            if recursive:
                parts = p.split("/")[:-1]
                for k in range(len(base.split("/")) - 1 if base else 0, len(parts)):
                    d = "/".join(parts[:k + 1])
                    if d and d.startswith(base.rstrip("/")) and d != directory:
                        entries.setdefault(d, {"name": d, "isDirectory": "true"})
        names = sorted(entries)
        start = int(q.get("continuation") or 0)
        size = max(1, min(int(q.get("maxResults") or 5000), 5000))
        page = names[start:start + size]
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        if start + size < len(names):
            hdrs["x-ms-continuation"] = str(start + size)
        body = json.dumps({"paths": [entries[n] for n in page]}).encode()
        return 200, hdrs, body

    def conditions(self, node):
        """If-Match / If-None-Match against node (None when the path does not exist)."""
        im = self.headers.get("If-Match")
        inm = self.headers.get("If-None-Match")
        if im is not None:
            if node is None:
                raise Fail(404, "PathNotFound")
            if im.strip() != "*" and im.strip() != node.etag:
                raise Fail(412, "ConditionNotMet")
        if inm is not None and node is not None:
            if inm.strip() == "*":
                raise Fail(409, "PathAlreadyExists")
            if inm.strip() == node.etag:
                raise Fail(412, "ConditionNotMet")

    def parse_properties(self):
        raw = self.headers.get("x-ms-properties")
        props = {}
        if raw is None or raw == "":
            return props
        for item in raw.split(","):
            name, eq, value = item.partition("=")
            if not eq or not name or not all(c.isascii() and (c.isalnum() or c in "_-")
                                             for c in name):
                raise Fail(400, "InvalidPropertyName")
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise Fail(400, "InvalidHeaderValue", MESSAGES["InvalidHeaderValue"] +
                           " x-ms-properties values must be base64.")
            props[name] = decoded
        return props

    def create(self, files, path, node, q, body):
        resource = q.get("resource")
        if resource not in ("file", "directory"):
            raise Fail(400, "InvalidQueryParameterValue")
        if body:
            raise Fail(400, "ContentLengthMustBeZero")
        self.conditions(node)
        if node is not None and node.kind != resource:
            raise Fail(409, "PathConflict")
        props = self.parse_properties()
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            p = files.get(parent)
            if p is None:
                files[parent] = Node("directory")
            elif p.kind != "directory":
                raise Fail(409, "PathConflict")
        new = Node(resource)
        new.properties = props
        new.content_type = self.headers.get("x-ms-content-type")
        files[path] = new
        return 201, {"ETag": new.etag, "Last-Modified": new.last_modified,
                     "x-ms-request-server-encrypted": "true"}, b""

    def append(self, node, q, body):
        if node.kind != "file":
            raise Fail(409, "PathConflict")
        try:
            pos = int(q.get("position", ""))
        except ValueError:
            raise Fail(400, "InvalidQueryParameterValue")
        md5 = self.headers.get("Content-MD5")
        if md5 is not None and md5.strip() != base64.b64encode(hashlib.md5(body).digest()).decode():
            raise Fail(400, "Md5Mismatch")
        if pos != len(node.committed) + len(node.uploaded):
            raise Fail(400, "InvalidFlushPosition")
        node.uploaded += body
        return 202, {"x-ms-request-server-encrypted": "true"}, b""

    def flush(self, node, q, body):
        if node.kind != "file":
            raise Fail(409, "PathConflict")
        if body:
            raise Fail(400, "ContentLengthMustBeZero")
        try:
            pos = int(q.get("position", ""))
        except ValueError:
            raise Fail(400, "InvalidQueryParameterValue")
        self.conditions(node)
        if pos != len(node.committed) + len(node.uploaded):
            raise Fail(400, "InvalidFlushPosition")
        node.committed += bytes(node.uploaded)
        node.uploaded = bytearray()
        node.content_type = self.headers.get("x-ms-content-type")
        node.content_md5 = self.headers.get("x-ms-content-md5")
        node.closed = q.get("close") == "true"
        node.touch()
        return 200, {"ETag": node.etag, "Last-Modified": node.last_modified,
                     "Content-Length": "0"}, b""

    def properties(self, node):
        h = {"ETag": node.etag, "Last-Modified": node.last_modified,
             "x-ms-resource-type": node.kind, "Accept-Ranges": "bytes",
             "Content-Length": str(len(node.committed) if node.kind == "file" else 0)}
        if node.content_type:
            h["Content-Type"] = node.content_type
        if node.content_md5:
            h["Content-MD5"] = node.content_md5
        if node.properties:
            h["x-ms-properties"] = ",".join(
                "%s=%s" % (k, base64.b64encode(v.encode()).decode())
                for k, v in node.properties.items())
            for k, v in node.properties.items():
                h["x-ms-meta-" + k] = v
        return h

    # Token endpoints ------------------------------------------------------------------
    def token(self, method, raw_query, imds):
        st = self.st
        q = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        with st.lock:
            if imds:
                st.imds_count += 1
            else:
                st.appservice_count += 1
            fail = st.token_fail
            if fail and fail.get("count", 0) != 0:
                if fail["count"] > 0:
                    fail["count"] -= 1
                return self.send_json(fail.get("status", 500), {
                    "error": "service_unavailable", "error_description": "Injected failure"})
            if method != "GET":
                return self.send_json(405, {"error": "invalid_request"})
            if imds:
                if self.headers.get("Metadata") != "true":
                    return self.send_json(400, {
                        "error": "invalid_request",
                        "error_description": "Required metadata header not specified"})
                if q.get("api-version") != "2018-02-01":
                    return self.send_json(400, {"error": "invalid_request",
                                                "error_description": "Invalid api-version"})
            else:
                if st.identity_header is None or \
                        self.headers.get("X-IDENTITY-HEADER") != st.identity_header:
                    return self.send_json(401, {"statusCode": 401,
                                                "message": "Unauthorized: bad identity header"})
                if q.get("api-version") != "2019-08-01":
                    return self.send_json(400, {"statusCode": 400,
                                                "message": "Invalid api-version"})
            if q.get("resource") != STORAGE_RESOURCE:
                return self.send_json(400, {"error": "invalid_resource",
                                            "error_description": "Unknown resource"})
            if st.client_id is not None and q.get("client_id") != st.client_id:
                return self.send_json(400, {"error": "invalid_request",
                                            "error_description": "Identity not found"})
            tok = "fake-mi-%s" % secrets.token_urlsafe(24)
            now = int(time.time())
            exp = now + int(st.token_lifetime)
            st.tokens[tok] = exp
        if imds:
            return self.send_json(200, {"access_token": tok, "refresh_token": "",
                                        "expires_in": str(exp - now), "expires_on": str(exp),
                                        "not_before": str(now), "resource": STORAGE_RESOURCE,
                                        "token_type": "Bearer"})
        return self.send_json(200, {"access_token": tok, "expires_on": str(exp),
                                    "resource": STORAGE_RESOURCE, "token_type": "Bearer",
                                    "client_id": st.client_id or "00000000-0000-0000-0000-0000"
                                                                 "00000000"})

    # Control --------------------------------------------------------------------------
    def control(self, method, raw_path, raw_query):
        st = self.st
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        arg = json.loads(raw) if raw else None
        with st.lock:
            if raw_path == "/_fake/reset":
                st.reset()
                return self.send_json(200, {})
            if raw_path == "/_fake/config":
                if "tokens" in arg:
                    st.configured_tokens = set(arg["tokens"])
                for k in ("sas_sig", "identity_header", "client_id", "token_lifetime",
                          "token_fail"):
                    if k in arg:
                        setattr(st, k, arg[k])
                return self.send_json(200, {})
            if raw_path == "/_fake/faults":
                st.faults = [dict(f) for f in arg]
                return self.send_json(200, {})
            if raw_path == "/_fake/seed":
                files = st.filesystems.setdefault(arg["fs"], {})
                node = Node("file")
                data = base64.b64decode(arg.get("data_b64", ""))
                if arg.get("flushed", True):
                    node.committed = data
                else:
                    node.uploaded = bytearray(data)
                node.properties = dict(arg.get("properties", {}))
                node.content_type = arg.get("content_type")
                node.content_md5 = arg.get("content_md5")
                files[arg["path"]] = node
                return self.send_json(200, {"etag": node.etag})
            if raw_path == "/_fake/state":
                out = {}
                for fs, files in st.filesystems.items():
                    out[fs] = {p: {"kind": n_.kind, "size": len(n_.committed),
                                   "uploaded": len(n_.uploaded), "etag": n_.etag,
                                   "content_type": n_.content_type,
                                   "content_md5": n_.content_md5, "closed": n_.closed,
                                   "properties": n_.properties}
                               for p, n_ in files.items()}
                return self.send_json(200, out)
            if raw_path.startswith("/_fake/data/"):
                fs, _, path = urllib.parse.unquote(raw_path[len("/_fake/data/"):]).partition("/")
                node = st.filesystems.get(fs, {}).get(path)
                if node is None:
                    return self.send_json(404, {"error": "no such file"})
                return self.send(200, node.committed, {"Content-Type": "application/octet-stream"})
            if raw_path == "/_fake/log":
                return self.send_json(200, st.log)
            if raw_path == "/_fake/tokens":
                return self.send_json(200, {"issued": sorted(st.tokens),
                                            "imds": st.imds_count,
                                            "appservice": st.appservice_count})
        return self.send_json(404, {"error": "unknown control path"})


def op_name(method, q):
    if q.get("resource") == "filesystem" or q.get("restype") == "container":
        return "filesystem"
    if method == "PUT":
        return "create"
    if method == "PATCH":
        return q.get("action", "patch")
    return {"HEAD": "head", "GET": "read", "DELETE": "delete"}.get(method, method.lower())


def take_fault(st, op):
    """The first armed fault for op, counted down; None when there is none."""
    for f in st.faults:
        if f.get("op") == op and f.get("count", 1) != 0:
            if f.get("count", 1) > 0:
                f["count"] = f.get("count", 1) - 1
            return f
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--account", default="devstoreaccount1")
    ap.add_argument("--key", default="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6"
                                     "tq/K1SZFPTOtr/KBHBeksoGMGw==")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="and this key (PEM)")
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake happens on the handler's thread, at its first read, so a client that
        # refuses the certificate cannot hold up the accepting thread.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        plain_handle_error = srv.handle_error

        def handle_error(request, client_address):
            if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
                plain_handle_error(request, client_address)  # a client refusing the certificate
        srv.handle_error = handle_error
    srv.daemon_threads = True
    srv.state = State(args.account, base64.b64decode(args.key))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
