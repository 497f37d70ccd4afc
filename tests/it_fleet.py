"""Integration cases for fleets: discovery, concurrency, catch-up, backfill, budget, shards."""
import json
import os
import re
import signal
import time

from harness import DEVICES, check, iso, jpeg_comment, md5, wait_for
from it_daemon import Proc, stored_files


def fleet(c, n, asleep=(), offline=()):
    """Gives the fake n cameras; the ids of those asleep or offline are given by index."""
    devs = []
    for i in range(n):
        devs.append({"deviceId": "7CDDDE%06X" % (0x100 + i), "name": "カメラ %d" % i,
                     "connected": i not in offline, "powerState": "sleep" if i in asleep else "on"})
    c.fake.config(devices=devs)
    return [d["deviceId"] for d in devs]


def dir_env(c, **kw):
    out = os.path.join(c.tmp, "captures")
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_CONTAINER_NAME=None,
                SORACAM_SINK="dir:" + out, SORACOM_DEVICE_ID=None, SORACAM_CAPTURE_DELAY="0")
    for k, v in kw.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env, out


def slots_of(files):
    """{device: sorted slot ms} from default-template names."""
    out = {}
    for f in files:
        m = re.match(r"\d{4}/\d\d/\d\d/(\w+)/soracam_(\d{8})_(\d{6})_(\d{3})\.jpg$", f)
        check(m is not None, "unexpected name %s" % f)
        t = time.strptime(m.group(2) + m.group(3), "%Y%m%d%H%M%S")
        ms = (int(time.mktime(t)) - time.timezone) * 1000 + int(m.group(4))
        out.setdefault(m.group(1), []).append(ms)
    return {k: sorted(v) for k, v in out.items()}


def assert_no_duplicate_exports(c):
    for dev, per in c.fake.stats()["export_posts"].items():
        dup = {t: n for t, n in per.items() if n != 1}
        check(not dup, "camera %s exported slots more than once: %r" % (dev, dup))


def test_fifty_cameras_three_slots_each_exactly_once(c):
    ids = fleet(c, 50)
    env, out = dir_env(c, SORACOM_DEVICE_IDS="all")
    base = (int(time.time()) - 3600) // 300 * 300 * 1000
    for k in range(3):
        r = c.run(["run", "--at", iso(base + k * 300000)], env)
        check(r.rc == 0, "run %d failed: %r" % (k, r))
        check("50 to capture (discovered)" in r.err, "discovery not logged: %r" % r.err[-500:])
    files = stored_files(out)
    check(len(files) == 150, "want 150 images, got %d" % len(files))
    per = slots_of(files)
    check(sorted(per) == sorted(ids) and all(len(v) == 3 for v in per.values()),
          "not 3 slots for every camera")
    assert_no_duplicate_exports(c)
    check(c.fake.posts() == 150, "want 150 exports, got %d" % c.fake.posts())
    side = json.load(open(os.path.join(out, files[0] + ".json")))
    check(side["metadata"].get("device_name", "").startswith("%E3%82%AB"),
          "camera name missing or not URL-encoded UTF-8: %r" % side["metadata"])


def test_all_skips_sleeping_and_disconnected_cameras(c):
    ids = fleet(c, 5, asleep={1}, offline={3})
    env, out = dir_env(c, SORACOM_DEVICE_IDS="all")
    r = c.run(["run", "--at", iso((int(time.time()) - 3600) // 300 * 300 * 1000)], env)
    check(r.rc == 0, "run failed: %r" % r)
    stored = sorted(slots_of(stored_files(out)))
    check(stored == sorted([ids[0], ids[2], ids[4]]), "stored %r" % stored)
    check("1 asleep, 1 disconnected" in r.err and ids[1] in r.err and ids[3] in r.err,
          "skips not logged with reasons: %r" % r.err[-800:])


def test_rate_limit_storm_on_one_camera_is_waited_out_without_second_exports(c):
    # SORACOM counts requests per API, not per camera: a 429 to one camera's export holds
    # back the export API for the fleet until the advised time, then every camera goes on.
    ids = fleet(c, 10)
    victim = ids[0]
    c.fake.faults({"op": "export_post", "device": victim, "action": "ratelimit:2", "count": 3},
                  {"op": "export_get", "device": victim, "action": "ratelimit:1", "count": 2})
    env, out = dir_env(c, SORACOM_DEVICE_IDS=",".join(ids))
    r = c.run(["run", "--at", iso((int(time.time()) - 3600) // 300 * 300 * 1000)], env)
    check(r.rc == 0, "run failed: %r" % r)
    ms = {m.group(1): int(m.group(2)) for m in
          re.finditer(r"stored device=(\w+) .* ms=(\d+)", r.err)}
    check(len(ms) == 10, "not every camera stored: %r" % ms)
    check(ms[victim] >= 6000, "the victim did not wait out its 429s (%dms)" % ms[victim])
    check(max(ms.values()) < 30000, "the fleet took too long: %r" % ms)
    check(c.fake.stats()["faults_fired"] == 5, "the 429s were not all met")
    assert_no_duplicate_exports(c)


def restart_scenario(c, env, stored):
    """Runs the daemon, SIGKILLs it, waits out a gap, restarts it, and checks that catch-up
    filled every slot without a second export. stored() gives the default-template names."""
    c.fake.config(footage_lag_ms=0, export_delay_ms=200)
    d = Proc(c, ["daemon"], env)
    try:
        d.wait_log(r"cycle for slot .*: 2 stored", 30, count=2)
    finally:
        d.kill()  # SIGKILL: no goodbye
    first = slots_of(stored())
    last_before = max(max(v) for v in first.values())
    wait_for(lambda: time.time() * 1000 > last_before + 4000, 10, "a gap of several slots")
    d = Proc(c, ["daemon"], env)
    try:
        d.wait_log(r"catch-up: \d+ slot\(s\) missing", 20)
        d.wait_log(r"catch-up: \d+ stored", 20)
        d.wait_log(r"cycle for slot .*: 2 stored", 20, count=2)
    finally:
        rc = d.stop()
    check(rc == 0, "exit %s" % rc)
    per = slots_of(stored())
    for dev in DEVICES:
        s = per[dev]
        gaps = [b for a, b in zip(s, s[1:]) if b - a != 1000]
        check(not gaps, "camera %s still has gaps before %r (slots %r)" % (dev, gaps, s))
        check(s[0] <= min(first[dev]), "history lost")
    assert_no_duplicate_exports(c)


def test_restart_after_kill_catches_up_without_reexporting(c):
    env, out = dir_env(c, SORACOM_DEVICE_IDS=",".join(DEVICES), SORACAM_SCHEDULE="* * * * * *")
    restart_scenario(c, env, lambda: stored_files(out))
    left = [f for d, _, fs in os.walk(os.path.join(out, ".soracam-lake", "exports")) for f in fs
            if f != ".spare-record.tmp"]  # a removed record's file, kept for the next one
    check(not left, "export journal records left behind: %r" % left)


def test_restart_catch_up_on_azure_blob(c):
    env = c.env(SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(DEVICES),
                SORACAM_SCHEDULE="* * * * * *", SORACAM_CAPTURE_DELAY="0")
    restart_scenario(c, env, lambda: c.blobs())
    reserved = c.blobs(reserved=True)
    check(not [n for n in reserved if n.startswith(".soracam-lake/exports/")],
          "export journal records left behind in the container: %r" % reserved)
    check(sorted(n.split("/")[2] for n in reserved if n.startswith(".soracam-lake/since/")) ==
          sorted(DEVICES), "no catch-up horizon recorded per camera: %r" % reserved)


def test_two_shards_cover_every_camera_exactly_once(c):
    ids = fleet(c, 12)
    slot = iso((int(time.time()) - 3600) // 300 * 300 * 1000)
    seen = []
    for k in range(2):
        env, out = dir_env(c, SORACOM_DEVICE_IDS=",".join(ids))
        r = c.run(["run", "--at", slot, "--shard", "%d/2" % k, "--sink",
                   "dir:" + os.path.join(c.tmp, "shard%d" % k)], env)
        check(r.rc == 0, "shard %d failed: %r" % (k, r))
        got = sorted(slots_of(stored_files(os.path.join(c.tmp, "shard%d" % k))))
        check(got, "shard %d captured nothing" % k)
        seen.append(set(got))
    check(not (seen[0] & seen[1]), "a camera is in both shards: %r" % (seen[0] & seen[1]))
    check(seen[0] | seen[1] == set(ids), "cameras in no shard: %r" % (set(ids) - seen[0] - seen[1]))
    r = c.run(["run", "--shard", "2/2"], dir_env(c)[0])
    check(r.rc == 2 and ("SORACAM_SHARD" in r.err or "--shard" in r.err), "bad shard accepted: %r" % r)


def test_backfill_refuses_when_budget_would_go_below_reserve(c):
    c.fake.config(budget_frames=100)
    env, out = dir_env(c, SORACOM_DEVICE_IDS=DEVICES[0], SORACAM_BUDGET_RESERVE="95")
    start = (int(time.time()) - 7200) // 3600 * 3600
    r = c.run(["backfill", "--from", iso(start * 1000), "--to", iso((start + 3600) * 1000)], env)
    check(r.rc == 1 and "reserve" in r.err and "--force" in r.err, "did not refuse: %r" % r)
    check(c.fake.posts() == 0, "exported although refused")
    check(re.search(r"%s +13 +100 +87" % DEVICES[0], r.err), "no estimate table: %r" % r.err[-800:])
    r = c.run(["backfill", "--from", iso(start * 1000), "--to", iso((start + 600) * 1000)], env)
    check(r.rc == 0 and c.fake.posts() == 3, "a small backfill within budget failed: %r" % r)


def test_backfill_resumes_after_interruption(c):
    c.fake.config(export_delay_ms=1000)
    env, out = dir_env(c, SORACOM_DEVICE_IDS=",".join(DEVICES), SORACAM_MAX_IN_FLIGHT="2")
    start = (int(time.time()) - 10800) // 3600 * 3600
    args = ["backfill", "--from", iso(start * 1000), "--to", iso((start + 3600) * 1000),
            "--every", "5m"]
    d = Proc(c, args, env)
    try:
        wait_for(lambda: len(stored_files(out)) >= 4 or d.dead(), 60, "4 images")
    except Exception:
        d.kill()
        raise
    rc = d.stop(signal.SIGINT)
    check(rc == 130, "want exit 130 after SIGINT, got %s" % rc)
    check("run the same command again" in d.err(), "no hint to rerun")
    partial = len(stored_files(out))
    check(partial < 26, "the first run was not interrupted")
    r = c.run(args, env, timeout=120)
    check(r.rc == 0, "resumed backfill failed: %r" % r)
    check(len(stored_files(out)) == 26, "want 26 images (13 slots x 2), got %d" % len(stored_files(out)))
    check("%d already stored" % partial in r.err or "already stored" in r.err, "did not skip: %r" % r.err[-600:])
    assert_no_duplicate_exports(c)


def test_slot_without_footage_is_given_up_after_three_attempts(c):
    victim = DEVICES[0]
    c.fake.faults({"op": "export_post", "device": victim, "action": "terminal:failed", "count": -1})
    env, out = dir_env(c, SORACOM_DEVICE_IDS=",".join(DEVICES))
    start = (int(time.time()) - 7200) // 3600 * 3600
    args = ["backfill", "--from", iso(start * 1000), "--to", iso((start + 600) * 1000)]
    for k in range(3):
        r = c.run(args, env)
        check(r.rc == 1, "attempt %d: want exit 1: %r" % (k, r))
    check(c.fake.posts(victim) == 9, "want 3 attempts of 3 slots, got %d" % c.fake.posts(victim))
    markers = [f for d, _, fs in os.walk(os.path.join(out, ".soracam-lake", "missing", victim)) for f in fs]
    check(len(markers) == 9, "want 9 markers, got %r" % markers)
    r = c.run(args, env)
    check(r.rc == 0, "after giving up the slots the run should succeed: %r" % r)
    check(c.fake.posts(victim) == 9, "a given-up slot was exported again")
    check("has no footage after 3 attempt(s)" in r.err, "giving up not reported: %r" % r.err[-800:])
    check(len(slots_of(stored_files(out)).get(DEVICES[1], [])) == 3, "the healthy camera lost slots")


def test_budget_guard_stops_exports_below_reserve(c):
    c.fake.config(budget_frames=5000)
    env, out = dir_env(c, SORACOM_DEVICE_IDS=DEVICES[0], SORACAM_BUDGET_RESERVE="5000")
    r = c.run(["run", "--at", iso((int(time.time()) - 3600) // 300 * 300 * 1000)], env)
    check(r.rc == 1 and "export budget reserve reached" in r.err, "guard silent: %r" % r)
    check(r.err.count("export budget reserve reached") == 1, "not said exactly once")
    check(c.fake.posts() == 0, "exported below the reserve")
    r = c.run(["run", "--at", iso((int(time.time()) - 3600) // 300 * 300 * 1000)],
              dict(env, SORACAM_BUDGET_RESERVE="100"))
    check(r.rc == 0 and c.fake.posts() == 1, "above the reserve it must export: %r" % r)


def test_restart_catch_up_over_the_dfs_api(c):
    """The same kill/restart scenario through ADLS Gen2's DFS API (List Paths, DELETE)."""
    from it_azure import dfs, dfs_env
    d = dfs(c)
    env = dfs_env(c, d, SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(DEVICES),
                  SORACAM_SCHEDULE="* * * * * *", SORACAM_CAPTURE_DELAY="0")

    def stored():
        return sorted(n for n in d.files(c.container) if n.endswith(".jpg"))

    restart_scenario(c, env, stored)
    names = d.files(c.container)
    check(not [n for n in names if n.startswith(".soracam-lake/exports/")],
          "export journal records left behind: %r" % names)


def test_kill_after_export_accepted_unanswered_resumes_without_second_export(c):
    """SIGKILL after SORACOM accepted an export but before its answer arrived: the intent
    record written before the request lets the next process find and use that export."""
    dev = DEVICES[0]
    env, out = dir_env(c, SORACOM_DEVICE_IDS=dev, SORACAM_SCHEDULE="* * * * * *")
    c.fake.config(footage_lag_ms=0, export_delay_ms=200)
    c.fake.faults({"op": "export_post", "device": dev, "action": "accept_then_delay:60000",
                   "after": 2})
    d = Proc(c, ["daemon"], env)
    try:
        wait_for(lambda: c.fake.stats()["faults_fired"] >= 1, 20, "the held-back export")
        exports = [e for e in c.fake.stats()["exports"] if e["deviceId"] == dev]
        held = max(exports, key=lambda e: e["requestedTime"])
        intents = [f for _, _, fs in os.walk(os.path.join(out, ".soracam-lake", "exports"))
                   for f in fs if ".pending-" in f]
        check(any(f.startswith("%d." % held["time"]) for f in intents),
              "no intent record for the slot: %r" % intents)
    finally:
        d.kill()
    d = Proc(c, ["daemon"], env)
    try:
        d.wait_log(r"export %s was accepted for this slot before a restart" % held["exportId"],
                   30)
        wait_for(lambda: held["time"] in slots_of(stored_files(out)).get(dev, []), 20,
                 "the slot stored")
    finally:
        rc = d.stop()
    check(rc == 0, "exit %s" % rc)
    check(c.fake.posts(dev, held["time"]) == 1, "the slot was exported twice")
    e = c.fake.export_for(dev, held["time"])
    name = [f for f in stored_files(out) if "soracam_" in f and
            slots_of([f])[dev] == [held["time"]]][0]
    check(md5(open(os.path.join(out, name), "rb").read()) == e["md5"],
          "stored bytes are not the held-back export's image")
    assert_no_duplicate_exports(c)


def test_first_slot_learns_export_time_before_polling_everyone(c):
    """Until one export is seen ready, only 32 are polled from 1 s on; the rest wait and then
    look just before the learned time, so no status request is spent too early. (Each
    export is asked for on its own here: the operator-wide listing is refused.)"""
    r, polls = status_run(c, 64, {"op": "export_list_all", "action": "status:403", "count": -1})
    polls.sort()
    check(len(polls) == 64 and polls[0] >= 1, "every export is polled: %r" % polls)
    # A probe looks at 1, 1.25, ... 2 s: 5 times. A waiter looks at most 3 times.
    early = [p for p in polls if p > 3]
    check(len(early) <= 32, "%d exports were polled before the export time was known: %r"
          % (len(early), polls))
    check(sum(polls) <= 32 * 6 + 32 * 3, "too many status requests: %r" % polls)


def status_run(c, n, *faults, delay_ms=2000, slot=0, base_s=None):
    """One slot (the slot-th before the last hour, or before base_s when given: a case with
    two runs passes the same base so a 5-minute boundary between them moves nothing) of n
    cameras whose exports take delay_ms; returns (run result, polls per export)."""
    ids = fleet(c, n)
    c.fake.config(export_delay_ms=delay_ms, export_delay_jitter_ms=0)
    if faults:
        c.fake.faults(*faults)
    env, out = dir_env(c, SORACOM_DEVICE_IDS=",".join(ids))
    base = base_s if base_s is not None else int(time.time()) - 3600
    r = c.run(["run", "--at", iso((base // 300 - slot) * 300 * 1000)], env)
    check(r.rc == 0, "run failed: %r" % r)
    check(len(stored_files(out)) == n * (slot + 1), "not every camera stored")
    assert_no_duplicate_exports(c)
    check(c.fake.posts() == n, "want %d exports, got %d" % (n, c.fake.posts()))
    return r, [e["polls"] for e in c.fake.stats()["exports"]]


def test_fleet_status_comes_from_one_listing_per_round(c):
    r, polls = status_run(c, 40)
    # 40 waiting exports: a round reads the operator-wide list, not 40 status requests. (A
    # round with fewer than 8 waiting, such as the very first, asks each one alone.)
    check(sum(polls) <= 20, "exports were polled one by one: %r" % polls)
    requests = c.fake.stats()["requests"]
    # discovery-free run: 40 usage + 40 POST + rounds (a page each, every 250 ms for ~2.5 s)
    check(requests <= 40 + 40 + 30, "too many SORACOM requests: %d" % requests)


def test_fleet_status_without_list_permission_asks_each_export(c):
    r, polls = status_run(c, 12, {"op": "export_list_all", "action": "status:403",
                                  "count": -1})
    check(min(polls) >= 1, "an export was never asked for: %r" % polls)
    check(r.err.count("refused to list the exports of all cameras") == 1,
          "the refusal is not said exactly once: %r" % r.err[-1500:])
    check("SoraCam:listSoraCamDeviceImageExports" in r.err, "the fix is not named")


def test_fleet_status_survives_a_failed_or_hostile_listing(c):
    # Rounds from 1 s on, every 250 ms (exports ready at 4 s), meet one fault each: two 503s
    # (one outage, said once), a listing of the wrong shape (read: the outage is over, and
    # its members are asked for alone), then a 429: the listing waits 5 s, so the rest are
    # asked for alone.
    r, polls = status_run(c, 12, {"op": "export_list_all", "action": "status:503", "count": 2},
                          {"op": "export_list_all", "action": "json:swap_types", "count": 1},
                          {"op": "export_list_all", "action": "ratelimit:5", "count": 1},
                          delay_ms=4000)
    fired = c.fake.stats()["faults_fired"]
    check(fired == 4, "%d of the 4 faults fired" % fired)
    failed = r.err.count("listing the exports of all cameras failed")
    check(failed == 2, "want the 503s and the 429 said once each, got %d: %r"
          % (failed, r.err[-2000:]))
    check(r.err.count("listing the exports of all cameras works again") == 1,
          "the recovery is not said once")
    check(min(polls) >= 1, "the exports were not asked for alone after the 429: %r" % polls)


def test_directory_sink_reuses_one_file_for_every_intent_record(c):
    """An intent record is written before every export and removed once the slot is
    stored. The directory sink keeps the removed file as the camera's spare and renames the
    next record from it, so no file is created or deleted per image (ext4 without a journal
    makes inodes freed in the last minutes slow to skip)."""
    ids = fleet(c, 2)
    env, out = dir_env(c, SORACOM_DEVICE_IDS=",".join(ids))
    base = (int(time.time()) - 3600) // 300 * 300 * 1000
    inodes = []
    for k in range(3):
        r = c.run(["run", "--at", iso(base + k * 300000)], env)
        check(r.rc == 0, "run %d failed: %r" % (k, r))
        state = {}
        for dev in ids:
            d = os.path.join(out, ".soracam-lake", "exports", dev)
            names = sorted(os.listdir(d))
            check(names == [".spare-record.tmp"], "camera %s: records left: %r" % (dev, names))
            state[dev] = os.stat(os.path.join(d, names[0])).st_ino
        inodes.append(state)
    check(inodes[0] == inodes[1] == inodes[2],
          "a new file was made for a later record: %r" % inodes)
    check(len(stored_files(out)) == 6, "not 3 slots for each camera")
    assert_no_duplicate_exports(c)


def test_fleet_status_falls_back_to_the_default_page_size(c):
    # The listing's largest page size is not documented: a 400 for limit=100 makes the
    # rounds ask for the API's default page size instead; a second 400 turns them off.
    base = int(time.time()) - 3600
    r, polls = status_run(c, 12, {"op": "export_list_all", "action": "status:400", "count": 1},
                          delay_ms=3000, base_s=base)
    check("using its default page size" in r.err, "the fallback is not said: %r" % r.err[-1500:])
    check("refused to list" not in r.err, "the listing was turned off after one 400")
    check(sum(polls) <= 2 * 12, "the later rounds did not use the listing: %r" % polls)
    c.fake.reset()
    r, polls = status_run(c, 12, {"op": "export_list_all", "action": "status:400", "count": -1},
                          slot=1, base_s=base)
    check("refused to list the exports of all cameras" in r.err, "not turned off: %r"
          % r.err[-1500:])
    check("SoraCam:listSoraCamDeviceImageExports" not in r.err,
          "a 400 is not a missing permission")


def test_fleet_status_gives_up_a_slow_listing(c):
    # The first listing hangs for 6 s: after 2 s its round is given up and its members are
    # asked for alone; the next round's listing is quick again.
    r, polls = status_run(c, 12, {"op": "export_list_all", "action": "delay:6000", "count": 1},
                          delay_ms=4000)
    check(r.err.count("listing the exports of all cameras is too slow") == 1,
          "the slow listing is not said once: %r" % r.err[-2000:])
    check("listing the exports of all cameras works again" in r.err, "the recovery is not said")
    check(min(polls) >= 1, "the slow round's members were not asked for alone: %r" % polls)


def test_listings_with_a_small_page_maximum_and_4_kb_paging_keys(c):
    """SORACOM's page-size maximum and paging keys are undocumented: with a maximum of 10 (a
    limit of 100 or 20 answers 400) and 4096-character keys, the status rounds page through
    12 cameras' exports at the default page size, and an ambiguous export answer is still
    resolved from the camera's own list (which falls back the same way): one export each."""
    c.fake.config(list_max_limit=10, next_key_bytes=4096)
    r, polls = status_run(c, 12, {"op": "export_post", "action": "accept_then:500", "count": 1},
                          delay_ms=3000)
    check("using its default page size" in r.err, "the round fallback is not said: %r"
          % r.err[-1500:])
    check("refused a camera's export list page size" in r.err,
          "the lookup's fallback is not said: %r" % r.err[-1500:])
    check("refused to list" not in r.err, "the listing was turned off: %r" % r.err[-1500:])
    check(sum(polls) <= 2 * 12, "the rounds did not page through the listing: %r" % polls)
    st = c.fake.stats()
    check(st["list_requests"]["export_list_all"] >= 2, "no second page was read: %r"
          % st["list_requests"])
