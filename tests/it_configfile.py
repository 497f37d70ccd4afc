"""Settings from a file (--config FILE, SORACAM_CONFIG_FILE): a capture configured by the file
alone, precedence (flag > environment > file), warnings for unknown names and for secrets in a
file other users may read, and no value ever printed."""
import os

from harness import AUTH_KEY, AUTH_KEY_ID, AZURITE_KEY, DEVICES, check, iso, slot_path
from it_run import assert_stored, past_slot


def write_env_file(c, name, text, mode=0o600):
    path = os.path.join(c.tmp, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def file_text(c, device):
    return ("# soracam-lake settings, as systemd's EnvironmentFile= reads them\n"
            "\n"
            "SORACOM_AUTH_KEY_ID=%s\n"
            "export SORACOM_AUTH_KEY='%s'\n"
            "SORACOM_DEVICE_ID=%s\n"
            "SORACOM_API_ENDPOINT=%s\n"
            "AZURE_STORAGE_CONNECTION_STRING=\"%s\"\n"
            "AZURE_STORAGE_CONTAINER_NAME=%s\n"
            "SORACAM_CAPTURE_DELAY=0\n"
            % (AUTH_KEY_ID, AUTH_KEY, device, c.fake.url, c.azurite_conn(), c.container))


def bare_env(c, **kw):
    """Only PATH (and sanitizer options): every setting must come from the file."""
    env = {k: v for k, v in c.env().items() if k == "PATH" or k.endswith("SAN_OPTIONS")}
    env.update(kw)
    return env


def test_config_file_alone_configures_a_capture(c):
    path = write_env_file(c, "soracam.env", file_text(c, DEVICES[0]))
    slot = past_slot()
    r = c.run(["--config", path, "run", "--at", iso(slot)], bare_env(c))
    check(r.rc == 0, "run with --config failed: %r" % r)
    check("warning" not in r.err, "warnings for a clean 0600 file: %r" % r)
    assert_stored(c, DEVICES[0], slot)
    # The same file through the variable; `config` shows where settings came from, masked.
    r = c.run(["config"], bare_env(c, SORACAM_CONFIG_FILE=path))
    check(r.rc == 0 and path in r.out and c.container in r.out, "config: %r" % r)
    check(AUTH_KEY not in r.out + r.err and AZURITE_KEY not in r.out + r.err,
          "config printed a secret")


def test_config_file_precedence_flag_then_environment_then_file(c):
    path = write_env_file(c, "soracam.env", file_text(c, DEVICES[1])
                          + "SORACAM_PATH_TEMPLATE=from-file/{device_id}/{epoch}.jpg\n")
    slot = past_slot()
    # The environment's camera beats the file's; the flag's template beats the file's.
    env = bare_env(c, SORACOM_DEVICE_ID=DEVICES[0])
    r = c.run(["--config", path, "--template", "{yyyy}/{MM}/{dd}/{device_id}/"
               "soracam_{yyyyMMdd}_{HHmmss}_{SSS}.jpg", "run", "--at", iso(slot)], env)
    check(r.rc == 0, "run failed: %r" % r)
    check(c.blobs() == [slot_path(slot, DEVICES[0])], "the environment's camera and the flag's "
          "template should win: %r" % c.blobs())
    check(c.fake.posts(DEVICES[1]) == 0, "the file's camera was captured")


def test_config_file_warnings_name_key_mode_and_fix_without_values(c):
    text = file_text(c, DEVICES[0]) + "SORACOM_DEVICEIDS=%s\n" % DEVICES[1]
    path = write_env_file(c, "shared.env", text, 0o644)
    r = c.run(["--config", path, "config"], bare_env(c))
    check(r.rc == 0, "config failed: %r" % r)
    check("%s:10: unknown setting SORACOM_DEVICEIDS is ignored; did you mean SORACOM_DEVICE_IDS?"
          % path in r.err, "no warning for the misspelt name: %r" % r)
    want = ("%s holds secrets (SORACOM_AUTH_KEY, AZURE_STORAGE_CONNECTION_STRING) but its mode "
            "0644 lets other users read or change it: run chmod 600 %s" % (path, path))
    check(want in r.err, "no warning about the file's mode: %r" % r)
    check(AUTH_KEY not in r.out + r.err and AZURITE_KEY not in r.out + r.err,
          "a secret was printed")
    os.chmod(path, 0o600)
    r = c.run(["--config", path, "config"], bare_env(c))
    check("chmod" not in r.err, "mode warning at 0600: %r" % r)


def test_config_file_malformed_line_exits_2_before_any_request(c):
    path = write_env_file(c, "broken.env", file_text(c, DEVICES[0])
                          + "SORACAM_SCHEDULE=\"0 */5 * * * *\n")
    r = c.run(["--config", path, "run", "--at", iso(past_slot())], bare_env(c))
    check(r.rc == 2 and "%s:10: no closing \"" % path in r.err and "KEY=VALUE" in r.err,
          "want exit 2 naming file:line: %r" % r)
    st = c.fake.stats()
    check(st["requests"] == 0 and st["auth"] == 0, "SORACOM was contacted")
    check(c.blobs() == [], "something was stored")
