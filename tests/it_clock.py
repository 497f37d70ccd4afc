"""SORACOM's clock differs from this host's: the program measures it from the Date headers
and compares every SORACOM timestamp in SORACOM's clock."""
import re
import time

from harness import DEVICES, check, iso
from it_daemon import Proc, dir_env
from it_fleet import fleet
from it_run import assert_stored, past_slot

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z\s+\w+\s+stored device=(\S+) "
                      r"slot=(\S+)Z", re.M)


def parse_iso_ms(text):
    """Milliseconds since the epoch of a UTC time written as 2026-12-04T16:58:59.124."""
    main, _, frac = text.partition(".")
    t = time.strptime(main, "%Y-%m-%dT%H:%M:%S")
    return (int(time.mktime(t)) - time.timezone) * 1000 + int(frac or 0)


def test_ambiguous_exports_under_a_skewed_clock_are_exported_once(c):
    """With SORACOM's clock 20 s ahead of or behind this host's, a 503 or a dropped connection
    after the export was accepted still finds that export: one export per slot."""
    cases = [(20000, "accept_then:503"), (-20000, "accept_then:503"),
             (20000, "accept_then_reset"), (-20000, "accept_then_reset")]
    for i, (skew, action) in enumerate(cases):
        c.fake.reset()  # a real clock does not jump 40 s back: no exports from another skew
        c.fake.config(clock_skew_ms=skew)
        c.fake.faults({"op": "export_post", "action": action, "count": 1})
        slot = past_slot(60 + 5 * i)
        r = c.run(["run", "--at", iso(slot)])
        check(r.rc == 0, "skew %+d ms, %s: run failed: %r" % (skew, action, r))
        check(c.fake.posts(DEVICES[0], slot) == 1, "skew %+d ms, %s: %d exports of one slot:\n%s"
              % (skew, action, c.fake.posts(DEVICES[0], slot), r.err))
        assert_stored(c, DEVICES[0], slot)
        if abs(skew) > 5000:
            check("clock" in r.err and "differs" in r.err,
                  "skew %+d ms: no warning about the clock: %r" % (skew, r.err))


def latencies(err):
    """(log time - slot) in ms of every stored line, in log order."""
    return [parse_iso_ms(m.group(1)) - parse_iso_ms(m.group(3))
            for m in LOG_TIME.finditer(err)]


def daemon_latency(c, skew, seconds):
    """Runs a daemon for 3 cameras on a 1-second schedule against a SORACOM whose clock is skew
    ms off for seconds; returns the latencies of its stored captures and the daemon's log."""
    c.fake.reset()
    ids = fleet(c, 3)
    c.fake.config(clock_skew_ms=skew, export_delay_ms=600, footage_lag_ms=1000)
    env, out = dir_env(c, SORACOM_DEVICE_IDS=",".join(ids), SORACAM_SCHEDULE="* * * * * *",
                       SORACAM_CAPTURE_DELAY="2s", SORACAM_CATCHUP_WINDOW="0")
    d = Proc(c, ["daemon"], env)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            d.dead()
            time.sleep(0.5)
    finally:
        rc = d.stop()
    check(rc == 0, "skew %+d: daemon exit %s" % (skew, rc))
    err = d.err()
    for dev, per in c.fake.stats()["export_posts"].items():
        check(all(n == 1 for n in per.values()), "skew %+d: a slot was exported twice: %r"
              % (skew, per))
    return latencies(err), err


def test_daemon_latency_stays_steady_under_a_skewed_clock(c):
    """3 s and 20 s ahead or behind: captures keep up with a 1-second schedule. The latency
    (log time minus slot) of the last third of the run is no larger than the first third's
    plus 1.5 s (the defect this guards against grew it by about half a second each second),
    every capture stored, none exported twice."""
    for skew in (3000, -3000, 20000, -20000):
        lat, err = daemon_latency(c, skew, 18)
        check(len(lat) >= 3 * 8, "skew %+d: only %d captures stored:\n%s"
              % (skew, len(lat), err[-3000:]))
        third = len(lat) // 3
        first, last = lat[:third], lat[-third:]
        avg_first, avg_last = sum(first) / len(first), sum(last) / len(last)
        check(avg_last <= avg_first + 1500,
              "skew %+d: latency grew from %.1fs to %.1fs:\n%s"
              % (skew, avg_first / 1000, avg_last / 1000, err[-3000:]))
        check("capture failed" not in err, "skew %+d: a capture failed:\n%s" % (skew, err[-3000:]))
