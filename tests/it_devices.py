"""Integration cases for `soracam-lake devices`."""
import json

from harness import check
from it_fleet import fleet


def test_devices_table_and_json(c):
    ids = fleet(c, 4, asleep={1}, offline={2})
    env = c.env(SORACOM_DEVICE_ID=None)
    r = c.run(["devices"], env)
    check(r.rc == 0, "devices failed: %r" % r)
    lines = r.out.splitlines()
    check(lines[0].split()[:4] == ["DEVICE", "NAME", "CONNECTED", "POWER"], "header: %r" % lines[0])
    check("4 camera(s)" in r.out, "not every camera listed: %r" % r.out)
    row = [l for l in lines if l.startswith(ids[1])][0]
    check(" sleep " in row and "14 d" in row and "259200" in row, "asleep row: %r" % row)
    row = [l for l in lines if l.startswith(ids[2])][0]
    check(" no " in row, "disconnected row: %r" % row)
    r = c.run(["devices", "--json"], env)
    check(r.rc == 0, "devices --json failed: %r" % r)
    cams = json.loads(r.out)
    check([x["device_id"] for x in cams] == ids, "json ids %r" % [x["device_id"] for x in cams])
    check(all(x["retention_days"] == 14 and x["remaining_frames"] == 259200 for x in cams),
          "json fields: %r" % cams[0])
    check(cams[2]["connected"] is False and cams[1]["power"] == "sleep", "json states: %r" % cams)
    check(c.fake.posts() == 0, "listing cameras exported something")


def test_devices_without_permissions_says_which(c):
    ids = fleet(c, 2)
    c.fake.faults({"op": "usage", "action": "status:403", "count": -1},
                  {"op": "device", "action": "status:403", "count": -1})
    r = c.run(["devices", "--device", ids[0]], c.env())
    check(r.rc == 0, "devices failed: %r" % r)
    check("1 camera(s)" in r.out, "--device did not narrow the list: %r" % r.out)
    check("SoraCam:getSoraCamDeviceExportUsage" in r.out and "SoraCam:getSoraCamDevice" in r.out,
          "missing permissions not named: %r" % r.out)
    r = c.run(["devices"], c.env(SORACOM_AUTH_KEY="secret-wrong-0000"))
    check(r.rc == 1 and "rejected the AuthKey" in r.err, "bad key: %r" % r)
