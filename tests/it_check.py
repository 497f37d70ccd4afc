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
                 "download URL", "stored export"]:
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
