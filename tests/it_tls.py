"""TLS: every client path against HTTPS fakes whose certificate comes from a private test CA
(made with the openssl command line in the test's temporary directory). Without the CA each
path refuses: a clear error naming the certificate and --cacert / SORACAM_CA_FILE, a non-zero
exit, nothing stored, no request past the handshake, no retry. With --cacert (or
SORACAM_CA_FILE) the same runs succeed. Paths: the SORACOM API, the presigned image URL, Azure
Blob (Azurite over HTTPS), ADLS Gen2 (the fake DFS over HTTPS) and a managed identity's token
endpoint."""
import os
import sys
import time

from harness import (AUTH_KEY, AUTH_KEY_ID, AZURITE_KEY, DEVICES, HERE, Fake, Server, check,
                     free_port, iso, make_test_ca, port_open, slot_path, wait_for)
from it_azure import ACCOUNT, IDENTITY_HEADER, Dfs
from it_run import past_slot

REFUSED = ("TLS certificate not accepted", "--cacert", "SORACAM_CA_FILE")


def ca(c):
    return make_test_ca(os.path.join(c.h.tmp, "tls"))


def started(c, key, make):
    """A server kept for the whole run (harness attribute key), started on first use."""
    got = getattr(c.h, key, None)
    if got is None or not got[0].alive():
        got = make()
        setattr(c.h, key, got)
    return got[1]


def tls_fake(c, images_only=False):
    """fake_soracom over HTTPS (images_only: the API plain, image URLs HTTPS). Returns its
    control client, reset."""
    paths = ca(c)

    def make():
        name = "fake_soracom_tls" + ("_images" if images_only else "")
        port_file = os.path.join(c.h.tmp, name + ".port")
        argv = [os.path.join(c.build, "fake_soracom"), "--port", "0", "--port-file", port_file,
                "--devices", "2", "--auth-key-id", AUTH_KEY_ID, "--auth-key", AUTH_KEY,
                "--tls-cert", paths["cert"], "--tls-key", paths["key"]]
        if images_only:
            argv += ["--tls-images", "--tls-port-file", port_file + ".tls"]
        srv = Server(name, argv, c.h.tmp)
        c.h.servers.append(srv)
        wait_for(lambda: os.path.exists(port_file) or not srv.alive(), 20, name)
        check(srv.alive(), "%s did not start:\n%s" % (name, srv.tail()))
        port = int(open(port_file).read())
        return srv, Fake(port, None if images_only else paths["ca"])
    f = started(c, "tls_fake_images" if images_only else "tls_fake", make)
    f.reset()
    return f


def tls_azurite(c):
    """Azurite's Blob service over HTTPS; returns its port."""
    paths = ca(c)

    def make():
        exe = os.path.join(HERE, "node_modules", ".bin", "azurite-blob")
        port = free_port()
        srv = Server("azurite_tls", [exe, "--blobHost", "127.0.0.1", "--blobPort", str(port),
                                     "--cert", paths["cert"], "--key", paths["key"],
                                     "--inMemoryPersistence", "--silent"], c.h.tmp)
        c.h.servers.append(srv)
        wait_for(lambda: port_open(port) or not srv.alive(), 60, "Azurite over HTTPS")
        check(srv.alive(), "Azurite over HTTPS did not start:\n" + srv.tail())
        return srv, port
    return started(c, "tls_azurite", make)


def tls_dfs(c):
    """tests/fake_dfs.py over HTTPS (storage and token endpoints); returns its client, reset."""
    paths = ca(c)

    def make():
        port_file = os.path.join(c.h.tmp, "fake_dfs_tls.port")
        srv = Server("fake_dfs_tls", [sys.executable, os.path.join(HERE, "fake_dfs.py"),
                                      "--port-file", port_file, "--account", ACCOUNT,
                                      "--key", AZURITE_KEY, "--tls-cert", paths["cert"],
                                      "--tls-key", paths["key"]], c.h.tmp)
        c.h.servers.append(srv)
        wait_for(lambda: os.path.exists(port_file) or not srv.alive(), 20, "fake DFS over HTTPS")
        check(srv.alive(), "fake DFS over HTTPS did not start:\n" + srv.tail())
        return srv, Dfs(int(open(port_file).read()), paths["ca"])
    d = started(c, "tls_dfs", make)
    d.reset()
    return d


def dir_sink(c, name):
    out = os.path.join(c.tmp, name)
    return out, {"AZURE_STORAGE_CONNECTION_STRING": None, "AZURE_STORAGE_CONTAINER_NAME": None,
                 "SORACAM_SINK": "dir:" + out}


def files(out):
    return sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out)
                  for f in fs if f.endswith(".jpg"))


def assert_refused(r, what):
    check(r.rc != 0, "%s: an untrusted certificate was accepted: %r" % (what, r))
    for s in REFUSED:
        check(s in r.err, "%s: the error does not say %r:\n%s" % (what, s, r.err[-3000:]))
    check("retrying" not in r.err and "attempt 2 of" not in r.err,
          "%s: a certificate failure was retried:\n%s" % (what, r.err[-3000:]))


def test_tls_soracom_api_needs_cacert(c):
    paths = ca(c)
    r = c.run(["--help"], c.env())
    check("--cacert FILE" in r.out and "SORACAM_CA_FILE" in r.out, "--help lacks --cacert")
    f = tls_fake(c)
    out, sink = dir_sink(c, "captures")
    env = c.env(SORACOM_API_ENDPOINT=f.url, **sink)
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)], env)
    assert_refused(r, "SORACOM API")
    check("SORACOM authentication failed at %s" % f.url in r.err, "the endpoint is not named")
    check(r.err.count("error SORACOM authentication failed at") == 1 and "1 auth" in r.err,
          "a refused certificate was tried (or reported) more than once: %r" % r.err)
    check(files(out) == [], "stored without a trusted certificate: %r" % files(out))
    st = f.stats()
    check(st["auth"] == 0 and st["requests"] == 0, "a request got past the TLS handshake: %r"
          % {k: st[k] for k in ("auth", "requests")})
    # Another CA's certificate in --cacert: still refused, and the message says the file lacks
    # the right CA.
    other = make_test_ca(os.path.join(c.h.tmp, "tls-other"))
    r = c.run(["--cacert", other["ca"], "run", "--at", iso(slot)], env)
    check(r.rc != 0 and "--cacert / SORACAM_CA_FILE do not include the one that signed it" in r.err,
          "with another CA: %r" % r)
    check(files(out) == [], "stored with another CA's certificate")
    r = c.run(["--cacert", paths["ca"], "run", "--at", iso(slot)], env)
    check(r.rc == 0, "with --cacert: %r" % r)
    check(files(out) == [slot_path(slot, DEVICES[0])], "with --cacert: %r" % files(out))
    r = c.run(["run", "--at", iso(slot - 300000)], dict(env, SORACAM_CA_FILE=paths["ca"]))
    check(r.rc == 0 and len(files(out)) == 2, "with SORACAM_CA_FILE: %r" % r)


def test_tls_image_url_needs_cacert(c):
    paths = ca(c)
    f = tls_fake(c, images_only=True)  # the API over HTTP, the image URLs over HTTPS
    out, sink = dir_sink(c, "captures")
    env = c.env(SORACOM_API_ENDPOINT=f.url, **sink)
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)], env)
    assert_refused(r, "image URL")
    check("download of export" in r.err, "the download is not named:\n%s" % r.err[-2000:])
    check(files(out) == [], "stored without a trusted certificate")
    st = f.stats()
    check(st["image_downloads"] == 0 and f.posts() == 1, "downloads %d, exports %d"
          % (st["image_downloads"], f.posts()))
    r = c.run(["--cacert", paths["ca"], "run", "--at", iso(slot)], env)
    check(r.rc == 0 and files(out) == [slot_path(slot, DEVICES[0])], "with --cacert: %r" % r)
    check(f.stats()["image_downloads"] == 1, "want one download: %r" % f.stats())


def blob_names(c, port, container):
    from azure.storage.blob import BlobServiceClient
    conn = ("DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=%s;"
            "BlobEndpoint=https://127.0.0.1:%d/devstoreaccount1;" % (AZURITE_KEY, port))
    svc = BlobServiceClient.from_connection_string(conn, connection_verify=ca(c)["ca"])
    try:
        return sorted(b.name for b in svc.get_container_client(container).list_blobs()
                      if not b.name.startswith(".soracam-lake/"))
    except Exception as e:
        if "ContainerNotFound" in str(e):
            return []
        raise


def test_tls_azure_blob_needs_cacert(c):
    paths = ca(c)
    port = tls_azurite(c)
    conn = ("DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=%s;"
            "BlobEndpoint=https://127.0.0.1:%d/devstoreaccount1;" % (AZURITE_KEY, port))
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=conn)
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)], env)
    assert_refused(r, "Azure Blob")
    check(c.fake.posts() == 0, "exported although the storage was unusable")
    check(blob_names(c, port, c.container) == [], "stored without a trusted certificate")
    r = c.run(["--cacert", paths["ca"], "run", "--at", iso(slot)], env)
    check(r.rc == 0, "with --cacert: %r" % r)
    check(blob_names(c, port, c.container) == [slot_path(slot, DEVICES[0])],
          "with --cacert: %r" % blob_names(c, port, c.container))


def test_tls_dfs_needs_cacert(c):
    paths = ca(c)
    d = tls_dfs(c)
    env = c.env(AZURE_STORAGE_API="dfs", AZURE_STORAGE_CONNECTION_STRING=d.conn())
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)], env)
    assert_refused(r, "DFS")
    check(d.log() == [], "a DFS request got past the TLS handshake: %r" % d.log()[:3])
    check(c.fake.posts() == 0, "exported although the storage was unusable")
    r = c.run(["--cacert", paths["ca"], "run", "--at", iso(slot)], env)
    check(r.rc == 0, "with --cacert: %r" % r)
    check(list(d.files(c.container)) == [slot_path(slot, DEVICES[0])],
          "with --cacert: %r" % d.files(c.container))


def test_tls_managed_identity_endpoint_needs_cacert(c):
    paths = ca(c)
    d = tls_dfs(c)
    d.config(identity_header=IDENTITY_HEADER, token_lifetime=3600)
    env = c.env(AZURE_STORAGE_API="dfs", AZURE_STORAGE_CONNECTION_STRING=None,
                AZURE_STORAGE_ACCOUNT_URL=d.account_url, IDENTITY_ENDPOINT=d.url + "/msi/token",
                IDENTITY_HEADER=IDENTITY_HEADER)
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)], env)
    assert_refused(r, "managed identity")
    check("managed identity" in r.err and "no token for Azure Storage" in r.err,
          "the token endpoint is not named:\n%s" % r.err[-2000:])
    check(d.tokens()["appservice"] == 0, "a token request got past the TLS handshake")
    check(IDENTITY_HEADER not in r.out + r.err, "the identity header was printed")
    r = c.run(["--cacert", paths["ca"], "run", "--at", iso(slot)], env)
    check(r.rc == 0, "with --cacert: %r" % r)
    check(d.tokens()["appservice"] == 1, "want one token fetch: %r" % d.tokens())
    check(list(d.files(c.container)) == [slot_path(slot, DEVICES[0])],
          "with --cacert: %r" % d.files(c.container))
