"""Integration cases for SORACOM's rate limits: a fleet paced by the rate-limit headers."""
import time

from harness import check, iso
from it_daemon import stored_files
from it_fleet import assert_no_duplicate_exports, dir_env, fleet, slots_of


def test_fleet_of_40_paces_itself_below_the_rate_limit(c):
    # 8 requests a second per API: 40 exports cannot go at once. The client follows the
    # X-Soracom-Ratelimit-* headers instead of running into 429s.
    ids = fleet(c, 40)
    c.fake.config(rate_limit=8, rate_window_ms=1000)
    env, out = dir_env(c, SORACOM_DEVICE_IDS="all")
    slot = (int(time.time()) - 3600) // 300 * 300 * 1000
    r = c.run(["run", "--at", iso(slot)], env)
    check(r.rc == 0, "run failed: %r" % r)
    per = slots_of(stored_files(out))
    check(sorted(per) == sorted(ids) and all(v == [slot] for v in per.values()),
          "not every camera stored its slot: %d of 40" % len(per))
    assert_no_duplicate_exports(c)
    check(c.fake.posts() == 40, "want 40 exports, got %d" % c.fake.posts())
    st = c.fake.stats()
    check(st["rate_limited"] * 10 < st["requests"],
          "%d of %d requests were answered 429" % (st["rate_limited"], st["requests"]))
