"""Integration cases for the Azure storage paths beyond the connection-string Blob sink: the DFS
sink (against tests/fake_dfs.py, itself validated by the official Python SDK), SAS tokens
(against Azurite), and managed identity (against the fake's token endpoints)."""
import base64
import datetime
import json
import os
import sys
import urllib.parse
import urllib.request

from harness import (AZURITE_KEY, DEVICES, HERE, Fake, Server, check, iso, jpeg_comment, md5,
                     slot_path, wait_for)
from it_run import past_slot

ACCOUNT = "devstoreaccount1"
IDENTITY_HEADER = "fake-identity-header-9f4b2c71d0e5"  # a secret: must never be printed
CLIENT_ID = "6f1c2f0e-8b1a-4d5e-9c3b-2a7e5d4c3b21"


# ---- the fake DFS endpoint --------------------------------------------------------------

class Dfs(Fake):
    """Client of tests/fake_dfs.py's control API (reset, config and faults as for the fake
    SORACOM API, plus the storage's own views)."""

    def __init__(self, port, cafile=None):
        super().__init__(port, cafile)
        self.account_url = "%s/%s" % (self.url, ACCOUNT)

    def seed(self, fs, path, data, flushed=True, **kw):
        return self._call("POST", "/_fake/seed", dict(
            fs=fs, path=path, data_b64=base64.b64encode(data).decode(), flushed=flushed, **kw))

    def state(self):
        return self._call("GET", "/_fake/state")

    def files(self, fs):
        return {p: v for p, v in self.state().get(fs, {}).items() if v["kind"] == "file"}

    def data(self, fs, path):
        """The committed bytes of a file."""
        url = "%s/_fake/data/%s/%s" % (self.url, fs, urllib.parse.quote(path))
        with urllib.request.urlopen(url, timeout=10, context=self.ssl) as r:
            return r.read()

    def log(self, op=None, records=False):
        """Requests the fake saw, of one operation if op is given. soracam-lake's own records
        (.soracam-lake/: catch-up markers, the export journal) are left out unless asked for:
        the cases here are about images."""
        return [e for e in self._call("GET", "/_fake/log")
                if (op is None or e["op"] == op)
                and (records or "/.soracam-lake/" not in (e.get("path") or ""))]

    def tokens(self):
        return self._call("GET", "/_fake/tokens")

    def conn(self, key=AZURITE_KEY):
        """A connection string for the fake (the Python SDK derives the DFS endpoint from
        BlobEndpoint; soracam-lake takes DfsEndpoint)."""
        return ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
                "BlobEndpoint=%s;DfsEndpoint=%s" % (ACCOUNT, key, self.account_url,
                                                    self.account_url))


def dfs(c):
    """The fake DFS endpoint, started on first use and reset for every case."""
    d = getattr(c.h, "fake_dfs", None)
    if d is None or not d[0].alive():
        port_file = os.path.join(c.h.tmp, "fake_dfs.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        srv = Server("fake_dfs", [sys.executable, os.path.join(HERE, "fake_dfs.py"),
                                  "--port-file", port_file, "--account", ACCOUNT,
                                  "--key", AZURITE_KEY], c.h.tmp)
        c.h.servers.append(srv)
        wait_for(lambda: os.path.exists(port_file) or not srv.alive(), 20, "fake DFS")
        check(srv.alive(), "fake DFS did not start:\n" + srv.tail())
        d = (srv, Dfs(int(open(port_file).read())))
        c.h.fake_dfs = d
    d[1].reset()
    return d[1]


def dfs_env(c, d, **kw):
    env = dict(AZURE_STORAGE_API="dfs", AZURE_STORAGE_CONNECTION_STRING=d.conn())
    env.update(kw)
    return c.env(**env)


def identity_env(c, d, **kw):
    """Managed identity through the fake's App Service endpoint, no connection string."""
    env = dict(AZURE_STORAGE_API="dfs", AZURE_STORAGE_CONNECTION_STRING=None,
               AZURE_STORAGE_ACCOUNT_URL=d.account_url,
               IDENTITY_ENDPOINT=d.url + "/msi/token", IDENTITY_HEADER=IDENTITY_HEADER)
    env.update(kw)
    return c.env(**env)


def no_secrets(r, *secrets):
    out = r.out + r.err
    for s in secrets:
        if s:
            check(s not in out and urllib.parse.quote(s, safe="") not in out,
                  "a secret (%s...) appears in the output:\n%r" % (s[:6], r))


def assert_dfs_stored(c, d, device, slot):
    """The DFS file for (device, slot) holds exactly what the fake SORACOM served, with
    properties, content type and MD5."""
    name = slot_path(slot, device)
    f = d.files(c.container).get(name)
    check(f is not None, "no file %s in %r" % (name, sorted(d.files(c.container))))
    data = d.data(c.container, name)
    served = c.fake.export_for(device, slot)
    check(served is not None, "the fake has no completed export for %s at %s" % (device, slot))
    check(md5(data) == served["md5"], "stored bytes differ from what the fake served")
    check(jpeg_comment(data) == "soracam-fake device=%s time=%d export=%s"
          % (device, slot, served["exportId"]), "image is not the one for its slot")
    check(f["size"] == len(data) and f["uploaded"] == 0, "uncommitted data left: %r" % f)
    check(f["content_type"] == "image/jpeg", "content type %r" % f["content_type"])
    check(f["content_md5"] == base64.b64encode(bytes.fromhex(md5(data))).decode(),
          "x-ms-content-md5 missing or wrong: %r" % f["content_md5"])
    check(f["closed"], "the flush did not say close=true")
    want = {"capture_time": iso(slot), "content_type": "image/jpeg", "device_id": device,
            "source": "soracom-soracam", "file_size": str(len(data)),
            "export_id": served["exportId"], "width": "1920", "height": "1080"}
    for k, v in want.items():
        check(f["properties"].get(k) == v, "property %s is %r, want %r"
              % (k, f["properties"].get(k), v))
    return data


# ---- the fake itself, validated by the official SDK ------------------------------------

def _sdk():
    try:
        from azure.storage.filedatalake import DataLakeServiceClient
        return DataLakeServiceClient
    except ImportError:
        return None


def test_fake_dfs_accepts_the_official_sdk_and_rejects_a_wrong_key(c):
    client = _sdk()
    if client is None:
        print("     SKIPPED: azure.storage.filedatalake is not importable (install Debian's "
              "python3-azure); the SDK round trip did not run")
        return
    from azure.core.exceptions import HttpResponseError
    d = dfs(c)
    data = os.urandom(3000) + b"end"
    meta = {"device_id": "7CDDDE000001", "capture_time": "2026-11-26T07:00:00.000Z",
            "note": "spaces and = signs, ok"}
    svc = client.from_connection_string(d.conn())
    fsc = svc.get_file_system_client(c.container)
    fsc.create_file_system()
    fsc.get_file_client("dir one/caf\u00e9+1.jpg").upload_data(data, overwrite=True,
                                                               metadata=meta)
    f = d.files(c.container).get("dir one/caf\u00e9+1.jpg")
    check(f is not None, "the SDK's upload left no file: %r" % d.state())
    check(d.data(c.container, "dir one/caf\u00e9+1.jpg") == data, "stored bytes differ")
    check(f["properties"] == meta, "metadata %r, want %r" % (f["properties"], meta))
    check(f["uploaded"] == 0 and f["closed"], "not flushed and closed: %r" % f)
    ops = [(e["op"], e["status"], e["auth"]) for e in d.log()]
    check(ops == [("filesystem", 201, "sharedkey"), ("create", 201, "sharedkey"),
                  ("append", 202, "sharedkey"), ("flush", 200, "sharedkey")],
          "unexpected requests %r" % ops)
    # Overwrite (the SDK's create has no If-None-Match) replaces the content.
    fsc.get_file_client("dir one/caf\u00e9+1.jpg").upload_data(b"second", overwrite=True)
    check(d.data(c.container, "dir one/caf\u00e9+1.jpg") == b"second", "overwrite failed")
    wrong = base64.b64encode(os.urandom(64)).decode()
    bad = client.from_connection_string(d.conn(key=wrong)).get_file_system_client(c.container)
    try:
        bad.get_file_client("x.jpg").upload_data(b"x", overwrite=True)
        check(False, "a wrong key was accepted")
    except HttpResponseError as e:
        check(e.status_code == 403 and e.error_code == "AuthenticationFailed",
              "wrong key: want 403 AuthenticationFailed, got %s %s" % (e.status_code,
                                                                       e.error_code))
    check("x.jpg" not in d.files(c.container), "a refused request still wrote")


def test_fake_dfs_signer_matches_sdk_vectors(c):
    """The fake's own SharedKey canonicalization reproduces every string-to-sign the official
    SDK computed (tests/data/sharedkey_vectors.json)."""
    import email.message
    import fake_dfs
    with open(os.path.join(HERE, "data", "sharedkey_vectors.json")) as f:
        vectors = json.load(f)["vectors"]
    check(len(vectors) >= 17, "too few vectors")
    for v in vectors:
        u = urllib.parse.urlsplit(v["url"])
        hdrs = email.message.Message()
        for name, value in v["headers"]:
            hdrs[name] = value
        got = fake_dfs.string_to_sign(v["method"], hdrs, v["account"], u.path, u.query)
        check(got == v["string_to_sign"], "vector %s: the fake signs\n%r\nthe SDK\n%r"
              % (v["name"], got, v["string_to_sign"]))


# ---- DFS sink ---------------------------------------------------------------------------

def test_dfs_run_stores_verified_images_with_properties(c):
    d = dfs(c)
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)],
              dfs_env(c, d, SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(DEVICES)))
    check(r.rc == 0, "run failed: %r" % r)
    for dev in DEVICES:
        assert_dfs_stored(c, d, dev, slot)
        check(c.fake.posts(dev, slot) == 1, "expected exactly one export for %s" % dev)
    creates = d.log("create")
    check(len(creates) == 2 and all(e["status"] == 201 for e in creates), "creates %r" % creates)
    check(all(e["auth"] == "sharedkey" for e in d.log()), "not all requests were signed")
    check(d.log("filesystem")[0]["status"] == 201, "the file system was not created")
    check("stored device=%s" % DEVICES[0] in r.err and ".jpg" in r.err, "no summary: %r" % r)
    # A second run finds both and exports nothing.
    before = c.fake.posts()
    r = c.run(["run", "--at", iso(slot)],
              dfs_env(c, d, SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(DEVICES)))
    check(r.rc == 0 and "already stored" in r.err, "second run: %r" % r)
    check(c.fake.posts() == before, "the second run exported again")


def test_dfs_existing_file_is_already_stored_and_never_overwritten(c):
    d = dfs(c)
    slot = past_slot()
    name = slot_path(slot, DEVICES[0])
    d.seed(c.container, name, b"pre-existing bytes")
    r = c.run(["run", "--at", iso(slot)], dfs_env(c, d))
    check(r.rc == 0, "run failed: %r" % r)
    check("already stored" in r.err, "not reported as already stored: %r" % r)
    check(c.fake.posts() == 0, "exported although the slot was stored")
    check(d.data(c.container, name) == b"pre-existing bytes", "the existing file was changed")
    check(not d.log("create") and not d.log("append"), "wrote although the slot was stored")


def test_dfs_file_appearing_meanwhile_is_kept(c):
    """Create-only: a file that appears between the lookup and the write is not replaced."""
    d = dfs(c)
    slot = past_slot()
    name = slot_path(slot, DEVICES[0])
    # The lookup says absent (404 from an injected fault); then the create finds a file.
    d.seed(c.container, name, b"written by someone else")
    d.faults({"op": "head", "status": 404, "code": "PathNotFound", "count": 1})
    r = c.run(["run", "--at", iso(slot)], dfs_env(c, d))
    check(r.rc == 0, "run failed: %r" % r)
    check(d.data(c.container, name) == b"written by someone else", "another writer's file "
                                                                   "was overwritten")
    creates = d.log("create")
    check(len(creates) == 1 and creates[0]["status"] == 409, "creates %r" % creates)
    check("appeared in the sink" in r.err, "no report of the conflict: %r" % r)


def test_dfs_empty_leftover_counts_as_absent_and_is_replaced(c):
    d = dfs(c)
    slot = past_slot()
    name = slot_path(slot, DEVICES[0])
    d.seed(c.container, name, b"half", flushed=False)  # created, appended, never flushed
    r = c.run(["run", "--at", iso(slot)], dfs_env(c, d))
    check(r.rc == 0, "run failed: %r" % r)
    check(c.fake.posts(DEVICES[0], slot) == 1, "the empty leftover was taken as stored")
    assert_dfs_stored(c, d, DEVICES[0], slot)
    deletes = d.log("delete")
    check(len(deletes) == 1 and deletes[0]["status"] == 200, "deletes %r" % deletes)
    check("empty file" in r.err, "the replacement was not logged: %r" % r)


def _failed_write_leaves_nothing(c, op):
    d = dfs(c)
    slot = past_slot()
    d.faults({"op": op, "status": 500, "code": "InternalError", "count": -1})
    r = c.run(["run", "--at", iso(slot)], dfs_env(c, d))
    check(r.rc == 1, "want exit 1: %r" % r)
    images = {p: v for p, v in d.files(c.container).items() if not p.startswith(".soracam-lake/")}
    check(images == {}, "a failed %s left %r" % (op, images))
    # The export journal keeps the accepted export, so a later run can resume it while its
    # URL is valid instead of exporting again.
    check([p for p in d.files(c.container) if p.startswith(".soracam-lake/exports/")],
          "the accepted export was not kept in the journal")
    check(len(d.log(op)) == 5, "want 5 attempts of %s: %r" % (op, d.log(op)))
    dels = d.log("delete")
    check(len(dels) == 1 and dels[0]["status"] == 200, "cleanup deletes %r" % dels)
    check("InternalError" in r.err and "storing failed" in r.err, "unclear error: %r" % r)
    return r


def test_dfs_failed_append_leaves_no_file(c):
    _failed_write_leaves_nothing(c, "append")


def test_dfs_failed_flush_leaves_no_file(c):
    _failed_write_leaves_nothing(c, "flush")


def test_dfs_transient_errors_are_retried(c):
    d = dfs(c)
    slot = past_slot()
    d.faults({"op": "append", "status": 503, "code": "ServerBusy", "count": 1},
             {"op": "flush", "status": 500, "code": "OperationTimedOut", "count": 1})
    r = c.run(["run", "--at", iso(slot)], dfs_env(c, d))
    check(r.rc == 0, "run failed: %r" % r)
    assert_dfs_stored(c, d, DEVICES[0], slot)
    check(not d.log("delete"), "deleted although the retries succeeded")


def test_dfs_lost_answers_are_recognised(c):
    """The append and the flush take effect but their answers are lost: the retried append
    finds its data there, the retried flush is refused (If-Match), and the lookup shows the
    file is complete and ours."""
    d = dfs(c)
    slot = past_slot()
    d.faults({"op": "append", "apply": True, "count": 1},
             {"op": "flush", "apply": True, "count": 1})
    r = c.run(["run", "--at", iso(slot)], dfs_env(c, d))
    check(r.rc == 0, "run failed: %r" % r)
    assert_dfs_stored(c, d, DEVICES[0], slot)
    check([e["status"] for e in d.log("append")] == ["dropped", 400], "appends %r"
          % d.log("append"))
    check([e["status"] for e in d.log("flush")] == ["dropped", 412], "flushes %r"
          % d.log("flush"))
    check(not d.log("delete"), "deleted a complete file")


def test_dfs_wrong_key_is_refused_with_a_clear_error(c):
    d = dfs(c)
    wrong = base64.b64encode(os.urandom(64)).decode()
    r = c.run(["run", "--at", iso(past_slot())],
              dfs_env(c, d, AZURE_STORAGE_CONNECTION_STRING=d.conn(key=wrong)))
    check(r.rc == 1, "want exit 1: %r" % r)
    check("AuthenticationFailed" in r.err and "AccountKey in AZURE_STORAGE_CONNECTION_STRING"
          in r.err, "the error does not name the credential: %r" % r)
    check(c.fake.stats()["requests"] == 0, "talked to SORACOM with unusable storage")
    no_secrets(r, wrong)


def test_dfs_needs_a_dfs_endpoint(c):
    r = c.run(["run"], c.env(AZURE_STORAGE_API="dfs",
                             AZURE_STORAGE_CONNECTION_STRING="UseDevelopmentStorage=true"))
    check(r.rc == 2 and "AZURE_STORAGE_API" in r.err and "DfsEndpoint" in r.err,
          "want exit 2 naming AZURE_STORAGE_API and the fix: %r" % r)
    r = c.run(["run"], c.env(AZURE_STORAGE_API="adls"))
    check(r.rc == 2 and "AZURE_STORAGE_API" in r.err and "dfs" in r.err, "bad API: %r" % r)


# ---- SAS against Azurite ----------------------------------------------------------------

def _account_sas(c, **perm):
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas
    p = dict(read=True, write=True, create=True)
    p.update(perm)
    return generate_account_sas(
        ACCOUNT, AZURITE_KEY, resource_types=ResourceTypes(container=True, object=True),
        permission=AccountSasPermissions(**p),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))


def _tamper(sas):
    """The SAS with one bit of its signature flipped; returns (sas, sig, tampered sig)."""
    parts = sas.split("&")
    for i, part in enumerate(parts):
        if part.startswith("sig="):
            sig = urllib.parse.unquote(part[4:])
            raw = base64.b64decode(sig)
            bad = base64.b64encode(bytes([raw[0] ^ 1]) + raw[1:]).decode()
            parts[i] = "sig=" + urllib.parse.quote(bad, safe="")
            return "&".join(parts), sig, bad
    raise AssertionError("no sig in the SAS")


def _blob_url(c):
    return "http://127.0.0.1:%d/%s" % (c.h.azurite_port, ACCOUNT)


def test_sas_token_with_account_url_stores_in_azurite(c):
    sas = _account_sas(c)
    slot = past_slot()
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_ACCOUNT_URL=_blob_url(c),
                AZURE_STORAGE_SAS_TOKEN="?" + sas)
    r = c.run(["run", "--at", iso(slot)], env)
    check(r.rc == 0, "run failed: %r" % r)
    data, props = c.blob(slot_path(slot, DEVICES[0]))
    check(md5(data) == c.fake.export_for(DEVICES[0], slot)["md5"], "stored bytes differ")
    check(props.metadata.get("device_id") == DEVICES[0], "metadata %r" % props.metadata)
    sig = urllib.parse.parse_qs(sas)["sig"][0]
    no_secrets(r, sig)
    r = c.run(["config"], env)
    check(r.rc == 0 and "AZURE_STORAGE_SAS_TOKEN" in r.out, "config: %r" % r)
    no_secrets(r, sig)


def test_sas_in_connection_string_stores_in_azurite(c):
    sas = _account_sas(c)
    slot = past_slot()
    conn = "BlobEndpoint=%s;SharedAccessSignature=%s" % (_blob_url(c), sas)
    r = c.run(["run", "--at", iso(slot)], c.env(AZURE_STORAGE_CONNECTION_STRING=conn))
    check(r.rc == 0, "run failed: %r" % r)
    data, _ = c.blob(slot_path(slot, DEVICES[0]))
    check(md5(data) == c.fake.export_for(DEVICES[0], slot)["md5"], "stored bytes differ")
    no_secrets(r, urllib.parse.parse_qs(sas)["sig"][0])


def test_tampered_sas_is_refused_with_a_clear_error(c):
    c.container_client().create_container()
    bad_sas, sig, bad = _tamper(_account_sas(c))
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_ACCOUNT_URL=_blob_url(c),
                AZURE_STORAGE_SAS_TOKEN=bad_sas)
    r = c.run(["run", "--at", iso(past_slot())], env)
    check(r.rc == 1, "want exit 1: %r" % r)
    check("403" in r.err and "SAS in AZURE_STORAGE_SAS_TOKEN" in r.err,
          "the error does not name the credential: %r" % r)
    check(c.fake.posts() == 0, "exported although storage refused the credential")
    check(c.blobs() == [], "something was written with a tampered SAS")
    no_secrets(r, sig, bad)
    # The same through the connection string names that setting instead.
    conn = "BlobEndpoint=%s;SharedAccessSignature=%s" % (_blob_url(c), bad_sas)
    r = c.run(["run", "--at", iso(past_slot())], c.env(AZURE_STORAGE_CONNECTION_STRING=conn))
    check(r.rc == 1 and "SharedAccessSignature in AZURE_STORAGE_CONNECTION_STRING" in r.err,
          "connection-string SAS: %r" % r)
    no_secrets(r, sig, bad)


def test_sas_without_account_url_and_bad_values_exit_2(c):
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_SAS_TOKEN="sv=1&sig=abcd")
    r = c.run(["run"], env)
    check(r.rc == 2 and "AZURE_STORAGE_ACCOUNT_URL" in r.err, "missing URL: %r" % r)
    r = c.run(["run"], dict(env, AZURE_STORAGE_ACCOUNT_URL="https://acct.blob.core.windows.net",
                            AZURE_STORAGE_SAS_TOKEN="sv=2021-08-06&sp=rcw"))
    check(r.rc == 2 and "AZURE_STORAGE_SAS_TOKEN" in r.err and "sig=" in r.err,
          "SAS without sig: %r" % r)
    r = c.run(["run"], dict(env, AZURE_STORAGE_ACCOUNT_URL="http://acct.blob.core.windows.net"))
    check(r.rc == 2 and "AZURE_STORAGE_ACCOUNT_URL" in r.err and "https" in r.err,
          "plain http to a remote host: %r" % r)
    r = c.run(["run"], c.env(AZURE_STORAGE_CONNECTION_STRING=None,
                             AZURE_STORAGE_ACCOUNT_URL="https://acct.blob.core.windows.net",
                             AZURE_CLIENT_ID="not-a-guid"))
    check(r.rc == 2 and "AZURE_CLIENT_ID" in r.err and "GUID" in r.err, "client id: %r" % r)


def test_connection_string_takes_precedence(c):
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)],
              c.env(AZURE_STORAGE_ACCOUNT_URL="https://elsewhere.blob.core.windows.net",
                    AZURE_STORAGE_SAS_TOKEN="sv=1&sig=unused"))
    check(r.rc == 0, "run failed: %r" % r)
    check("takes precedence" in r.err, "the ignored settings were not reported: %r" % r)
    c.blob(slot_path(slot, DEVICES[0]))


# ---- managed identity -------------------------------------------------------------------

def test_managed_identity_app_service_token_is_fetched_once_and_reused(c):
    d = dfs(c)
    d.config(identity_header=IDENTITY_HEADER, token_lifetime=3600)
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)],
              identity_env(c, d, SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(DEVICES)))
    check(r.rc == 0, "run failed: %r" % r)
    for dev in DEVICES:
        assert_dfs_stored(c, d, dev, slot)
    t = d.tokens()
    reqs = d.log()
    check(t["appservice"] == 1 and t["imds"] == 0,
          "want one token fetch shared by all %d requests: %r" % (len(reqs), t))
    check(len(reqs) >= 7 and all(e["auth"] == "bearer" for e in reqs),
          "not every request carried the token: %r" % reqs)
    no_secrets(r, IDENTITY_HEADER, *t["issued"])


def test_managed_identity_imds_with_client_id(c):
    d = dfs(c)
    d.config(client_id=CLIENT_ID)
    slot = past_slot()
    env = identity_env(c, d, IDENTITY_ENDPOINT=None, IDENTITY_HEADER=None,
                       SORACAM_IMDS_ENDPOINT=d.url, AZURE_CLIENT_ID=CLIENT_ID)
    r = c.run(["run", "--at", iso(slot)], env)
    check(r.rc == 0, "run failed: %r" % r)
    assert_dfs_stored(c, d, DEVICES[0], slot)
    t = d.tokens()
    check(t["imds"] == 1 and t["appservice"] == 0, "want one IMDS fetch: %r" % t)
    no_secrets(r, *t["issued"])
    # A client id the platform does not know is a clear error, before any export.
    r = c.run(["run", "--at", iso(slot - 300000)],
              dict(env, AZURE_CLIENT_ID="00000000-0000-0000-0000-000000000001"))
    check(r.rc == 1 and "Identity not found" in r.err and "AZURE_CLIENT_ID" in r.err,
          "unknown identity: %r" % r)
    check(c.fake.posts(DEVICES[0], slot - 300000) == 0, "exported without usable storage")


def test_managed_identity_token_near_expiry_is_refreshed(c):
    """A token within the usable margin of its expiry is never reused: each request fetches
    a fresh one, and every storage request carried a then-valid token."""
    d = dfs(c)
    d.config(identity_header=IDENTITY_HEADER, token_lifetime=10)
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)], identity_env(c, d))
    check(r.rc == 0, "run failed: %r" % r)
    assert_dfs_stored(c, d, DEVICES[0], slot)
    storage = d.log(records=True)
    t = d.tokens()
    check(t["appservice"] == len(storage) and len(storage) >= 4,
          "want one fetch per storage request (%d), got %r" % (len(storage), t))
    check(all(e["auth"] == "bearer" for e in storage), "a request went without a token")
    no_secrets(r, IDENTITY_HEADER, *t["issued"])


def test_managed_identity_endpoint_failure_is_a_clear_error(c):
    d = dfs(c)
    d.config(identity_header=IDENTITY_HEADER, token_fail={"status": 500, "count": -1})
    r = c.run(["run", "--at", iso(past_slot())], identity_env(c, d))
    check(r.rc == 1, "want exit 1: %r" % r)
    check("managed identity" in r.err and "IDENTITY_ENDPOINT" in r.err and "HTTP 500" in r.err
          and "Identity > System assigned" in r.err, "unclear error: %r" % r)
    check(d.tokens()["appservice"] == 4, "want 4 attempts: %r" % d.tokens())
    check(d.log() == [], "storage was called without a token")
    check(c.fake.posts() == 0, "exported without usable storage")
    no_secrets(r, IDENTITY_HEADER)
    # A wrong identity header (401) is not retried.
    d.config(token_fail=None, identity_header="another-value-entirely")
    r = c.run(["run", "--at", iso(past_slot())], identity_env(c, d))
    check(r.rc == 1 and "HTTP 401" in r.err, "wrong header: %r" % r)
    check(d.tokens()["appservice"] == 5, "a 401 was retried: %r" % d.tokens())
    no_secrets(r, IDENTITY_HEADER)


def test_managed_identity_without_imds_fails_fast(c):
    d = dfs(c)
    env = identity_env(c, d, IDENTITY_ENDPOINT=None, IDENTITY_HEADER=None,
                       SORACAM_IMDS_ENDPOINT="http://127.0.0.1:9")  # nothing listens there
    r = c.run(["run", "--at", iso(past_slot())], env, timeout=60)
    check(r.rc == 1 and "IMDS" in r.err and "Azure VM" in r.err, "unclear: %r" % r)
    check(r.seconds < 20, "took %.1fs to give up on an unreachable IMDS" % r.seconds)
    check(d.log() == [], "storage was called without a token")


def test_managed_identity_settings_are_validated(c):
    d = dfs(c)
    env = identity_env(c, d, IDENTITY_HEADER=None)
    r = c.run(["run"], env)
    check(r.rc == 2 and "IDENTITY_HEADER" in r.err, "endpoint without header: %r" % r)
    r = c.run(["run"], identity_env(c, d, IDENTITY_ENDPOINT="http://10.0.0.1/msi/token"))
    check(r.rc == 2 and "IDENTITY_ENDPOINT" in r.err, "remote http endpoint: %r" % r)
    no_secrets(r, IDENTITY_HEADER)
    check(d.log() == [] and d.tokens()["appservice"] == 0, "network use on a config error")
