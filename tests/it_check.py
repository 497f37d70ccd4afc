"""Integration cases for `soracam-lake check`: one line per link, the fix for each failure."""
import os

from harness import AZURITE_KEY, DEVICES, check
from it_fleet import fleet


def fails(r, *words):
    """The lines marked as failing, and that each word appears in one of them."""
    bad = [l for l in r.out.splitlines() if l.startswith("\u2718") or l.startswith("    fix:")]
    for w in words:
        check(any(w in l for l in bad), "no failing line mentions %r:\n%s" % (w, r.out))
    return bad


def test_check_all_good(c):
    r = c.run(["check"], c.env(SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(DEVICES)))
    check(r.rc == 0, "check failed: %r" % r)
    check("\u2718" not in r.out and "READY (all" in r.out, "not all passed: %s" % r.out)
    for word in ["SORACOM: authenticated", DEVICES[0], DEVICES[1], "licence", "frames left",
                 "storage:", "writable"]:
        check(word in r.out, "no line about %r:\n%s" % (word, r.out))
    check(c.fake.posts() == 0, "check exported an image")
    check(not [n for n in c.blobs(reserved=True) if "probe" in n], "the probe was left behind")


def test_check_rejected_key(c):
    r = c.run(["check"], c.env(SORACOM_AUTH_KEY="secret-wrong-key-9999"))
    check(r.rc == 1 and "NOT READY" in r.out, "want exit 1: %r" % r)
    fails(r, "rejected the AuthKey", "SORACOM_AUTH_KEY")


def test_check_camera_problems(c):
    ids = fleet(c, 3, asleep={1}, offline={2})
    r = c.run(["check"], c.env(SORACOM_DEVICE_ID=None,
                               SORACOM_DEVICE_IDS=",".join(ids + ["7CDDDE0000FF"])))
    check(r.rc == 1, "want exit 1: %r" % r)
    fails(r, "7CDDDE0000FF: not found", "check the device id", "%s: power state is sleep" % ids[1],
          "%s: disconnected" % ids[2])
    check([l for l in r.out.splitlines() if l.startswith("\u2714 camera %s: connected" % ids[0])],
          "the healthy camera is not passed: %s" % r.out)


def test_check_missing_permissions_are_named(c):
    c.fake.faults({"op": "device", "action": "status:403", "count": -1},
                  {"op": "usage", "action": "status:403", "count": -1})
    r = c.run(["check"], c.env())
    check(r.rc == 1, "want exit 1: %r" % r)
    fails(r, "SoraCam:getSoraCamDevice", "OAuth2:authorize", "SoraCam:getSoraCamDeviceExportUsage")


def test_check_budget_below_reserve(c):
    c.fake.config(budget_frames=100)
    r = c.run(["check"], c.env(SORACAM_BUDGET_RESERVE="500"))
    check(r.rc == 1, "want exit 1: %r" % r)
    fails(r, "at or below the reserve", "raise the camera's export limit")


def test_check_storage_credential_refused(c):
    bad_key = "A" * 86 + "=="
    conn = c.azurite_conn().replace(AZURITE_KEY, bad_key)
    r = c.run(["check"], c.env(AZURE_STORAGE_CONNECTION_STRING=conn))
    check(r.rc == 1, "want exit 1: %r" % r)
    fails(r, "storage:", "AccountKey")
    check(bad_key not in r.out + r.err, "the key was printed")


def test_check_storage_not_writable(c):
    blocker = os.path.join(c.tmp, "not-a-directory")
    open(blocker, "w").close()
    r = c.run(["check"], c.env(AZURE_STORAGE_CONNECTION_STRING=None,
                               AZURE_STORAGE_CONTAINER_NAME=None, SORACAM_SINK="dir:" + blocker))
    check(r.rc == 1, "want exit 1: %r" % r)
    fails(r, "storage:", blocker)


def test_check_fleet_status_listing(c):
    ids = fleet(c, 8)
    env = c.env(SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(ids))
    r = c.run(["check"], env)
    check(r.rc == 0 and "one listing answers all 8 cameras" in r.out, "not checked: %r" % r)
    c.fake.faults({"op": "export_list_all", "action": "status:403", "count": -1})
    r = c.run(["check"], env)
    # Captures still work without it (one request per export): a warning, not a failure.
    check(r.rc == 0 and "READY (all" in r.out and "1 warning(s)" in r.out,
          "want exit 0 with a warning: %r" % r)
    warned = [l for l in r.out.splitlines() if l.startswith("\u26a0")]
    check(len(warned) == 1 and "cannot be listed" in warned[0], "no warning line: %s" % r.out)
    fix = r.out.split(warned[0], 1)[1].splitlines()[1]
    for w in ("SoraCam:listSoraCamDeviceImageExports", "OAuth2:authorize"):
        check(w in fix, "the fix does not name %s: %s" % (w, fix))
    r = c.run(["check"], c.env(SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(ids[:7])))
    check(r.rc == 0 and "export statuses" not in r.out,
          "checked for fewer than 8 cameras: %r" % r)


def test_check_capture_exports_one_moment_and_reports_each_fact(c):
    """check --capture exports and stores one recent moment of one camera and prints each
    protocol fact with a tick or a warning; its report holds no secret, token or URL query."""
    report = os.path.join(c.tmp, "report.json")
    c.fake.faults({"op": "export_list", "action": "status:400", "count": 1})
    r = c.run(["check", "--capture", DEVICES[0], "--yes", "--report", report])
    check(r.rc == 0, "check --capture failed: %r" % r)
    check(c.fake.posts(DEVICES[0]) == 1, "want exactly one export, got %d" % c.fake.posts(DEVICES[0]))
    check(len([n for n in c.blobs() if n.endswith(".jpg")]) == 1, "not stored: %r" % c.blobs())
    for word in ["clock", "requestedTime", "rate-limit", "limit=100", "JPEG 1920x1080",
                 "download URL", "stored export", "record area takes deletes"]:
        check(word in r.out, "no fact about %r:\n%s" % (word, r.out))
    check("refused limit=100" in r.out, "the page-size refusal was not reported:\n%s" % r.out)
    with open(report) as f:
        text = f.read()
    import json
    doc = json.loads(text)
    check(doc["stored"] is True and doc["device"] == DEVICES[0], "report: %r" % doc)
    check(len(doc["facts"]) >= 6, "report has too few facts: %r" % doc)
    for secret in ["secret-harness", "X-Amz-Signature", "X-Amz-Credential", "token", "AccountKey",
                   "sig="]:
        check(secret not in text, "the report holds %r" % secret)
    for secret in ["secret-harness", "X-Amz-Signature"]:
        check(secret not in r.out + r.err, "output holds %r" % secret)


def test_check_capture_asks_before_spending(c):
    """Without --yes and without a terminal, check --capture exports nothing and says how to
    confirm; the options belong to check --capture only."""
    r = c.run(["check", "--capture", DEVICES[0]])
    check(r.rc == 2 and "--yes" in r.err, "want exit 2 naming --yes: %r" % r)
    check(c.fake.posts() == 0, "exported without confirmation")
    r = c.run(["check", "--yes"])
    check(r.rc == 2 and "check --capture" in r.err, "--yes without --capture accepted: %r" % r)

# ---- the storage permissions, proved one by one (container SAS against Azurite) ----------

def _container_sas_env(c, permission):
    """A container SAS with exactly the given permission letters for a container made here
    (a container SAS cannot create its container), as AZURE_STORAGE_SAS_TOKEN."""
    import datetime
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas
    c.container_client().create_container()
    sas = generate_container_sas(
        "devstoreaccount1", c.container, account_key=AZURITE_KEY,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
    url = "http://127.0.0.1:%d/devstoreaccount1" % c.h.azurite_port
    sig = [p for p in sas.split("&") if p.startswith("sig=")][0][4:]
    return c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_ACCOUNT_URL=url,
                 AZURE_STORAGE_SAS_TOKEN=sas), sig


def _no_sig(r, sig):
    import urllib.parse
    out = r.out + r.err
    check(sig not in out and urllib.parse.unquote(sig) not in out, "the SAS signature was printed")


def test_check_sas_without_delete_is_named(c):
    env, sig = _container_sas_env(c, "rcwl")
    r = c.run(["check"], env)
    check(r.rc == 1 and "NOT READY" in r.out, "want exit 1: %r" % r)
    fails(r, "SAS lacks d (delete)", "AuthorizationPermissionMismatch", "sp=rcwdl")
    for passed in ("storage: writable", "storage: read", "storage: list"):
        check([l for l in r.out.splitlines() if l.startswith("\u2714 " + passed)],
              "%r not passed: %s" % (passed, r.out))
    check(len([l for l in r.out.splitlines() if l.startswith("\u2718")]) == 1,
          "more than the delete failed: %s" % r.out)
    _no_sig(r, sig)


def test_check_sas_without_list_or_read_is_named(c):
    env, sig = _container_sas_env(c, "cwd")
    r = c.run(["check"], env)
    check(r.rc == 1, "want exit 1: %r" % r)
    fails(r, "SAS lacks r (read)", "SAS lacks l (list)")
    check(not [l for l in r.out.splitlines() if "lacks d" in l], "delete named: %s" % r.out)
    _no_sig(r, sig)


def test_check_sas_with_every_permission_passes_and_run_leaves_no_record(c):
    env, sig = _container_sas_env(c, "racwdl")
    r = c.run(["check"], env)
    check(r.rc == 0 and "READY (all" in r.out, "check failed: %r" % r)
    for passed in ("writable", "read", "list", "delete"):
        check([l for l in r.out.splitlines() if l.startswith("\u2714 storage: " + passed)],
              "%r not passed: %s" % (passed, r.out))
    from it_run import past_slot
    from harness import iso
    r = c.run(["run", "--at", iso(past_slot())], env)
    check(r.rc == 0, "run failed: %r" % r)
    check("may not delete" not in r.err, "a delete was refused: %r" % r)
    left = [n for n in c.blobs(reserved=True) if n.startswith(".soracam-lake/")]
    check(left == [], "records left behind: %r" % left)
    _no_sig(r, sig)


def test_run_with_sas_without_delete_says_it_once_and_stops_writing_records(c):
    """Without d the records cannot be removed: said once per process with the fix (not
    once per image), and no more are written, so they do not pile up."""
    from it_run import past_slot
    from harness import DEVICES as devs, iso
    env, sig = _container_sas_env(c, "rcwl")
    env.update(SORACOM_DEVICE_ID="", SORACOM_DEVICE_IDS=",".join(devs))
    env.pop("SORACOM_DEVICE_ID")
    r = c.run(["run", "--at", iso(past_slot(60))], env)
    check(r.rc == 0, "run failed: %r" % r)
    check(r.err.count("may not delete") == 1, "want the refusal said once: %r" % r)
    check("lacks d (delete)" in r.err and "sp=rcwdl" in r.err, "no fix given: %r" % r)
    check("could not update the export journal" not in r.err, "said per image: %r" % r)
    first = [n for n in c.blobs(reserved=True) if n.startswith(".soracam-lake/exports/")]
    check(first == [], "records written although they cannot be removed: %r" % first)
    r = c.run(["run", "--at", iso(past_slot(120))], env)
    check(r.rc == 0 and r.err.count("may not delete") == 1, "second run: %r" % r)
    later = [n for n in c.blobs(reserved=True) if n.startswith(".soracam-lake/exports/")]
    check(later == [], "records pile up: %r" % later)
    _no_sig(r, sig)

