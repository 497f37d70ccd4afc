"""Integration cases for `soracam-lake run` against Azurite and the fake SORACOM API."""
import json
import os
import time

from harness import (AUTH_KEY, DEVICES, Tripwire, check, iso, jpeg_comment, md5, slot_path)

HOUR_MS = 3600 * 1000


def past_slot(minutes_ago=60):
    """A slot time well inside the fake's recording window, on a 5-minute boundary."""
    now = int(time.time()) * 1000
    t = now - minutes_ago * 60 * 1000
    return t - t % (300 * 1000)


def assert_stored(c, device, slot, template="default"):
    """The blob for (device, slot) holds exactly the bytes the fake served for that slot."""
    name = slot_path(slot, device, template)
    data, props = c.blob(name)
    served = c.fake.export_for(device, slot)
    check(served is not None, "the fake has no completed export for %s at %s" % (device, slot))
    check(md5(data) == served["md5"], "stored bytes differ from what the fake served")
    check(jpeg_comment(data) == "soracam-fake device=%s time=%d export=%s"
          % (device, slot, served["exportId"]), "image is not the one for its slot: %r"
          % jpeg_comment(data))
    check(props.content_settings.content_type == "image/jpeg",
          "content type %r" % props.content_settings.content_type)
    check(props.content_settings.content_md5 is not None
          and md5(data) == bytes(props.content_settings.content_md5).hex(),
          "Content-MD5 missing or wrong")
    m = props.metadata
    want = {"capture_time": iso(slot), "content_type": "image/jpeg", "device_id": device,
            "source": "soracom-soracam", "file_size": str(len(data)),
            "export_id": served["exportId"], "width": "1920", "height": "1080"}
    for k, v in want.items():
        check(m.get(k) == v, "metadata %s is %r, want %r" % (k, m.get(k), v))
    return data


def test_run_two_cameras_stores_verified_images(c):
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)],
              c.env(SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(DEVICES)))
    check(r.rc == 0, "run failed: %r" % r)
    for d in DEVICES:
        assert_stored(c, d, slot)
        check(c.fake.posts(d, slot) == 1, "expected exactly one export for %s" % d)
    check(c.blobs() == sorted(slot_path(slot, d) for d in DEVICES), "unexpected blobs %r" % c.blobs())
    check(c.fake.stats()["auth"] == 1, "authenticated more than once per process")
    check("stored device=%s" % DEVICES[0] in r.err, "no summary line per capture: %r" % r)


def test_second_run_same_slot_exports_nothing(c):
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 0, "first run failed: %r" % r)
    before = c.fake.stats()
    r = c.run(["run", "--at", iso(slot)])
    after = c.fake.stats()
    check(r.rc == 0, "second run failed: %r" % r)
    check(after["export_posts"] == before["export_posts"], "second run exported again")
    check(after["requests"] == before["requests"] and after["auth"] == before["auth"],
          "second run talked to SORACOM although the slot was stored")
    check("already stored" in r.err, "no 'already stored' report: %r" % r)


def test_existing_object_is_never_overwritten(c):
    slot = past_slot()
    name = slot_path(slot, DEVICES[0])
    cc = c.container_client()
    cc.create_container()
    cc.get_blob_client(name).upload_blob(b"pre-existing")
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 0, "run failed: %r" % r)
    data, _ = c.blob(name)
    check(data == b"pre-existing", "an existing object was overwritten")
    check(c.fake.posts() == 0, "exported although the slot was stored")


def test_missing_variable_exits_2_without_network(c):
    trip = Tripwire()
    try:
        env = c.env(SORACOM_AUTH_KEY=None, SORACOM_API_ENDPOINT="http://127.0.0.1:%d" % trip.port,
                    AZURE_STORAGE_CONNECTION_STRING=(
                        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                        "AccountKey=%s;BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1"
                        % ("a2V5", trip.port)))
        r = c.run(["run", "--at", iso(past_slot())], env)
        check(r.rc == 2, "want exit 2: %r" % r)
        check("SORACOM_AUTH_KEY" in r.err and "secret-" in r.err,
              "message does not name the variable and a valid value: %r" % r)
        check(trip.connections() == 0, "a network connection was made")
        for var, val in [("SORACOM_DEVICE_ID", "bad/id"), ("AZURE_STORAGE_CONTAINER_NAME", "Bad_Name"),
                         ("SORACAM_CAPTURE_DELAY", "soon"), ("SORACAM_SCHEDULE", "*/5 * *")]:
            r = c.run(["run"], dict(env, SORACOM_AUTH_KEY=AUTH_KEY, **{var: val}))
            check(r.rc == 2 and var in r.err, "%s=%s: want exit 2 naming it: %r" % (var, val, r))
        check(trip.connections() == 0, "a network connection was made")
        check(c.fake.stats()["requests"] == 0, "the fake SORACOM was contacted")
    finally:
        trip.close()


def test_reference_variables_only_store_like_the_reference(c):
    """Only the reference's five variables (plus the endpoint of the fake)."""
    slot = past_slot()
    env = c.env(SORACAM_PATH_TEMPLATE="{yyyy}/{MM}/{dd}/soracam_{yyyyMMdd}_{HHmmss}_{SSS}.jpg")
    r = c.run(["run", "--at", iso(slot)], env)
    check(r.rc == 0, "run failed: %r" % r)
    assert_stored(c, DEVICES[0], slot, "reference")
    env = c.env()
    slot2 = slot - 300 * 1000
    r = c.run(["run", "--at", iso(slot2)], env)
    check(r.rc == 0, "run with the default template failed: %r" % r)
    assert_stored(c, DEVICES[0], slot2)


def test_reauthenticates_once_on_401(c):
    c.fake.faults({"op": "export_get", "action": "expire_token", "count": 1})
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 0, "run failed: %r" % r)
    assert_stored(c, DEVICES[0], slot)
    check(c.fake.stats()["auth"] == 2, "want one re-authentication, got %d auths"
          % c.fake.stats()["auth"])


def test_rejected_auth_key_fails_without_retry_loop(c):
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)],
              c.env(SORACOM_DEVICE_IDS=",".join(DEVICES), SORACOM_AUTH_KEY="secret-wrong-key-1234"))
    check(r.rc == 1, "want exit 1: %r" % r)
    check("rejected the AuthKey" in r.err and "SORACOM_AUTH_KEY" in r.err, "unclear error: %r" % r)
    check(c.fake.stats()["auth"] == 1, "auth retried after a rejection: %d" % c.fake.stats()["auth"])
    check(c.fake.posts() == 0, "exported without a session")


def test_rate_limited_export_waits_and_succeeds(c):
    c.fake.faults({"op": "export_post", "action": "ratelimit:1", "count": 1})
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 0, "run failed: %r" % r)
    assert_stored(c, DEVICES[0], slot)
    check(c.fake.posts(DEVICES[0], slot) == 1, "want one accepted export")
    check(c.fake.stats()["faults_fired"] == 1, "the 429 was not served")
    check(r.seconds >= 1.0, "did not wait for the advised second (%.2fs)" % r.seconds)
    check("rate limited" in r.err, "the wait was not logged")


def test_failed_export_is_reported_and_exits_1(c):
    c.fake.faults({"op": "export_post", "action": "terminal:failed", "count": 1})
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 1, "want exit 1: %r" % r)
    check("status failed" in r.err and DEVICES[0] in r.err, "failure not reported: %r" % r)
    check(c.blobs() == [], "something was stored")


def test_limit_exceeded_is_reported(c):
    c.fake.faults({"op": "export_post", "action": "terminal:limitExceeded", "count": 1})
    r = c.run(["run", "--at", iso(past_slot())])
    check(r.rc == 1 and "limitExceeded" in r.err, "want a limitExceeded report: %r" % r)


def test_non_jpeg_is_never_stored(c):
    c.fake.faults({"op": "image", "action": "not_jpeg", "count": -1})
    r = c.run(["run", "--at", iso(past_slot())])
    check(r.rc == 1, "want exit 1: %r" % r)
    check("not a JPEG" in r.err, "reason not given: %r" % r)
    check(c.blobs() == [], "a non-JPEG was stored")
    check(c.fake.posts() == 1, "a bad download must not cause a second export")


def test_truncated_download_is_retried(c):
    c.fake.faults({"op": "image", "action": "truncate", "count": 1})
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 0, "run failed: %r" % r)
    assert_stored(c, DEVICES[0], slot)
    check(c.fake.stats()["image_downloads"] == 2, "want two downloads")
    check(c.fake.posts() == 1, "a retried download must not export again")


def test_ambiguous_export_500_is_not_exported_twice(c):
    c.fake.faults({"op": "export_post", "action": "accept_then:500", "count": 1})
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 0, "run failed: %r" % r)
    assert_stored(c, DEVICES[0], slot)
    check(c.fake.posts(DEVICES[0], slot) == 1, "exported twice after an ambiguous 500: %d"
          % c.fake.posts(DEVICES[0], slot))
    check("searching the export list" in r.err, "ambiguity not logged: %r" % r)


def test_ambiguous_export_reset_is_not_exported_twice(c):
    c.fake.faults({"op": "export_post", "action": "accept_then_reset", "count": 1})
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 0, "run failed: %r" % r)
    assert_stored(c, DEVICES[0], slot)
    check(c.fake.posts(DEVICES[0], slot) == 1, "exported twice after a dropped connection")


def test_run_resolves_a_record_an_earlier_run_left_unresolved(c):
    """A run whose export answer was lost and whose export list could not be read leaves its
    intent record (the export's fate is unknown) and exits 1. The next run, not killed in
    between, resolves that record from the export list: it stores the accepted export and
    says why, instead of exporting the slot a second time."""
    c.fake.faults({"op": "export_post", "action": "accept_then_reset", "count": 1},
                  {"op": "export_list", "action": "status:403", "count": -1})
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 1, "the first run should fail (export list unreadable): %r" % r)
    check(c.fake.posts(DEVICES[0], slot) == 1, "the first run exported %d times"
          % c.fake.posts(DEVICES[0], slot))
    c.fake._call("DELETE", "/_fake/faults")
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 0, "second run failed: %r" % r)
    check(c.fake.posts(DEVICES[0], slot) == 1, "the slot was exported again: %d exports"
          % c.fake.posts(DEVICES[0], slot))
    assert_stored(c, DEVICES[0], slot)
    check("left unresolved" in r.err and "no second export" in r.err,
          "the second run did not say how it resolved the record: %r" % r.err)


def test_ambiguous_export_503_is_looked_up_before_sending_again(c):
    # SORACOM does not say a 503 means "not processed": the export list is read first.
    c.fake.faults({"op": "export_post", "action": "status:503", "count": 1})
    slot = past_slot()
    r = c.run(["run", "--at", iso(slot)])
    check(r.rc == 0, "run failed: %r" % r)
    assert_stored(c, DEVICES[0], slot)
    check(c.fake.posts(DEVICES[0], slot) == 1, "want exactly one accepted export")
    check("none in the export list" in r.err, "503 not treated as ambiguous: %r" % r.err[-800:])


def test_export_that_never_completes_times_out(c):
    c.fake.faults({"op": "export_post", "action": "terminal:stuck", "count": 1})
    r = c.run(["run", "--at", iso(past_slot())], c.env(SORACAM_EXPORT_TIMEOUT="5s"))
    check(r.rc == 1, "want exit 1: %r" % r)
    check("did not complete within 5s" in r.err, "timeout not reported: %r" % r)
    check(r.seconds < 30, "took %.1fs" % r.seconds)


def test_unknown_device_is_reported(c):
    r = c.run(["run", "--at", iso(past_slot())], c.env(SORACOM_DEVICE_ID="7CDDDE0000FF"))
    check(r.rc == 1 and "7CDDDE0000FF" in r.err and "not known" in r.err,
          "unknown device not reported: %r" % r)


def test_run_without_at_captures_latest_slot(c):
    c.fake.config(footage_lag_ms=0)
    before = int(time.time() * 1000)
    r = c.run(["run"], c.env(SORACAM_SCHEDULE="*/2 * * * * *", SORACAM_CAPTURE_DELAY="1s"))
    check(r.rc == 0, "run failed: %r" % r)
    exports = [e for e in c.fake.stats()["exports"] if e.get("md5")]
    check(len(exports) == 1, "want one export, got %r" % exports)
    slot = exports[0]["time"]
    check(slot % 2000 == 0 and before - 2000 <= slot <= before, "slot %d is not the latest "
          "2-second slot before %d" % (slot, before))
    assert_stored(c, DEVICES[0], slot)


def test_dir_sink_writes_atomically_with_sidecar(c):
    out = os.path.join(c.tmp, "captures")
    slot = past_slot()
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_CONTAINER_NAME=None,
                SORACAM_SINK="dir:" + out, SORACOM_DEVICE_IDS=",".join(DEVICES))
    r = c.run(["run", "--at", iso(slot)], env)
    check(r.rc == 0, "run failed: %r" % r)
    files = sorted(os.path.relpath(os.path.join(d, f), out)
                   for d, _, fs in os.walk(out) for f in fs if ".soracam-lake" not in d)
    want = sorted([slot_path(slot, d) for d in DEVICES] + [slot_path(slot, d) + ".json" for d in DEVICES])
    check(files == want, "files %r, want %r (no temp files)" % (files, want))
    for d in DEVICES:
        data = open(os.path.join(out, slot_path(slot, d)), "rb").read()
        check(md5(data) == c.fake.export_for(d, slot)["md5"], "bytes differ for %s" % d)
        side = json.load(open(os.path.join(out, slot_path(slot, d) + ".json")))
        check(side["metadata"]["capture_time"] == iso(slot) and side["size"] == len(data)
              and side["content_type"] == "image/jpeg", "sidecar wrong: %r" % side)
    r = c.run(["run", "--at", iso(slot)], env)
    check(r.rc == 0 and c.fake.posts() == 2, "second run into the directory exported again")


def test_default_sink_without_connection_string_is_captures_dir(c):
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_CONTAINER_NAME=None)
    r = c.run(["config"], env)
    check(r.rc == 0 and "dir:./captures" in r.out, "default sink is not ./captures: %r" % r)


def test_config_command_masks_secrets(c):
    r = c.run(["config"], c.env(SORACOM_DEVICE_IDS=",".join(DEVICES)))
    check(r.rc == 0, "config failed: %r" % r)
    check(AUTH_KEY not in r.out and "AccountKey" not in r.out, "a secret was printed: %r" % r)
    check("devstoreaccount1" in r.out and DEVICES[1] in r.out, "config not shown: %r" % r)


def test_help_and_version(c):
    r = c.run(["--help"], c.env())
    check(r.rc == 0, "--help failed")
    for word in ["run", "--at", "SORACOM_AUTH_KEY_ID", "AZURE_STORAGE_CONNECTION_STRING",
                 "SORACAM_SINK", "SORACAM_PATH_TEMPLATE", "exit status"]:
        check(word in r.out, "--help does not mention %s" % word)
    r = c.run(["--version"], c.env())
    check(r.rc == 0 and r.out.startswith("soracam-lake "), "--version: %r" % r)
    r = c.run(["frobnicate"], c.env())
    check(r.rc == 2 and "unknown command" in r.err, "unknown command: %r" % r)
    r = c.run(["run", "--at", "yesterday"], c.env())
    check(r.rc == 2 and "ISO-8601" in r.err, "bad --at: %r" % r)


def test_flags_override_environment(c):
    slot = past_slot()
    other = c.container + "-flag"
    r = c.run(["run", "--at", iso(slot), "--container", other, "--device", DEVICES[1]])
    check(r.rc == 0, "run failed: %r" % r)
    c.container = other
    check(c.blobs() == [slot_path(slot, DEVICES[1])], "flags were not used: %r" % c.blobs())
