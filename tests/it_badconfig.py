"""A table of bad configurations: every setting of `soracam-lake --help` (its variable, and its
flag when it has one), malformed Azure connection strings, templates, schedules, time zones,
contradictory settings, configuration files and command lines. Each must exit 2 with a message
naming the variable or flag and what to fix, print no secret, and send nothing anywhere: every
endpoint points at a listener that counts connections, or at the fake SORACOM API whose request
counter must stay at zero."""
import os
import re
import time

from harness import AUTH_KEY, AZURITE_KEY, Tripwire, check, iso

# What the table does not cover, and why.
EXEMPT = {"USE_SORACOM_API": "accepted and ignored (the reference deployment's switch): no "
                             "value is wrong"}

SECRET_VARS = ("SORACOM_AUTH_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_SAS_TOKEN",
               "IDENTITY_HEADER")
IDENTITY_HEADER = "badconfig-identity-header-5be1c0de"  # a secret
BAD_KEY = "q7Z3mK1vR9dT0xWf*not-base64*Kp"           # a secret that is not base64
BAD_AUTH_KEY = "secret-Vb7\u202eQx2 Lm9Tz4Rk8Wp3"         # an AuthKey with a bidi mark and a blank
# What no message may hold raw: control characters (but the newline) and bidi controls.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def settings(c):
    """{variable: flag or None} from --help, so a new setting needs a row here."""
    r = c.run(["--help"], c.env())
    check(r.rc == 0, "--help failed: %r" % r)
    out = {}
    for m in re.finditer(r"^  (--([a-z-]+) \S+|\(environment only\))\s+([A-Z][A-Z0-9_]+)$", r.out, re.M):
        out[m.group(3)] = m.group(2)
    check(len(out) >= 30, "could not read the settings from --help:\n%s" % r.out)
    return out


def rows(c, trip, tmp):
    """(names, env changes, argv, fix): names are what the message must name (any one of
    them, in the first line that names one), fix a regex for what it says to do."""
    t = "http://127.0.0.1:%d" % trip.port
    conn = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;"
            "BlobEndpoint=%s/devstoreaccount1" % (AZURITE_KEY, t))
    mi = {"AZURE_STORAGE_CONNECTION_STRING": None, "AZURE_STORAGE_ACCOUNT_URL": t + "/acct",
          "IDENTITY_ENDPOINT": t + "/msi/token", "IDENTITY_HEADER": IDENTITY_HEADER,
          "SORACAM_IMDS_ENDPOINT": t}
    imds = dict(mi, IDENTITY_ENDPOINT=None, IDENTITY_HEADER=None)
    not_pem = os.path.join(tmp, "not-a-ca.pem")
    with open(not_pem, "w") as f:
        f.write("this is not a certificate\n")
    bad_file = os.path.join(tmp, "malformed.env")
    with open(bad_file, "w") as f:
        f.write("# settings\nSORACOM_AUTH_KEY %s\n" % AUTH_KEY)
    os.chmod(bad_file, 0o600)
    bad_ids_file = os.path.join(tmp, "badids.env")
    with open(bad_ids_file, "w") as f:
        f.write("SORACOM_DEVICE_IDS=7CDDDE000001,cam 2\n")
    bad_value_file = os.path.join(tmp, "badvalue.env")
    with open(bad_value_file, "w") as f:
        f.write("export SORACAM_SHARD='9/3'\n")
    now = int(time.time()) * 1000
    R = []

    def row(names, env=None, argv=("run",), fix=""):
        R.append((names if isinstance(names, tuple) else (names,), env or {}, list(argv), fix))

    # SORACOM
    row("SORACOM_AUTH_KEY_ID", {"SORACOM_AUTH_KEY_ID": None}, fix=r"set SORACOM_AUTH_KEY_ID=keyId-")
    row("SORACOM_AUTH_KEY_ID", {"SORACOM_AUTH_KEY_ID": "keyId-abc def"}, fix="exactly as")
    row("SORACOM_AUTH_KEY", {"SORACOM_AUTH_KEY": None}, fix=r"set it to the AuthKey secret")
    row("SORACOM_AUTH_KEY", {"SORACOM_AUTH_KEY": "secret-has a-blank"}, fix="exactly as")
    row("SORACOM_DEVICE_ID", {"SORACOM_DEVICE_ID": "bad/id"}, fix=r"e\.g\. 7CDDDEADBEEF")
    row("SORACOM_DEVICE_ID", {"SORACOM_DEVICE_ID": None}, fix=r"set SORACOM_DEVICE_ID=")
    row("SORACOM_DEVICE_IDS", {"SORACOM_DEVICE_IDS": "7CDDDE000001,cam 2!"}, fix="letters, digits")
    # Strict ids: blanks are not separators, empty items and non-ASCII are refused, the item
    # is shown escaped with the list as it was read.
    I = "SORACOM_DEVICE_IDS"
    row(I, {I: "dev A"}, fix=r"item 1 'dev A' is not a device id: it has a blank inside; the "
                             r"list was read as \['dev A'\].*separate ids with commas only")
    row(I, {I: "dev-A,,dev-B"}, fix=r"item 2 is empty.*\['dev-A', '', 'dev-B'\]")
    row(I, {I: "dev-A, dev-B,"}, fix=r"item 3 is empty")
    row(I, {I: "dev\u202eA,\uff44ev-B"}, fix=r"item 1 'dev<U\+202E>A' is not a device id")
    row(I, {I: "dev\u202eA,\uff44ev-B"}, fix=r"item 2 '<U\+FF44>ev-B' is not a device id")
    row(I, {I: "dev\x1b[2Jx"}, fix=r"'dev\\x1b\[2Jx' is not a device id")
    row(I, {"SORACAM_CONFIG_FILE": bad_ids_file, I: None},
        fix=re.escape("(set in %s:1)" % bad_ids_file))
    K = "SORACOM_AUTH_KEY_ID"
    row(K, {K: "keyId-\uff41\uff42\u202ex"}, fix=r"not ASCII \(U\+FF41\) at character 7.*"
                                                r"exactly as the console shows it")
    row(K, {K: "AKIA0123456789"}, fix="does not start with keyId-")
    row(K, {K: AUTH_KEY}, fix="are the two variables swapped")
    row("SORACOM_AUTH_KEY", {"SORACOM_AUTH_KEY": BAD_AUTH_KEY},
        fix=r"not ASCII \(U\+202E\) at character 11.*printable ASCII without blanks")
    row("SORACOM_API_ENDPOINT", {"SORACOM_API_ENDPOINT": "http://api.soracom.io"}, fix="https://")
    row("SORACOM_API_ENDPOINT", {"SORACOM_API_ENDPOINT": "https:// api.soracom.io"}, fix="https://")
    row("SORACOM_API_ENDPOINT", {"SORACOM_API_ENDPOINT": "ftp://api.soracom.io"}, fix="https://")
    # Azure connection strings
    C = "AZURE_STORAGE_CONNECTION_STRING"
    row(C, {C: "DefaultEndpointsProtocol=https;AccountName=acct;EndpointSuffix=core.windows.net"},
        fix="needs AccountKey")
    row(C, {C: "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=%s" % BAD_KEY},
        fix="not valid base64.*copy it from the Azure portal")
    row(C, {C: "DefaultEndpointsProtocol=ftp;AccountName=acct;AccountKey=%s" % AZURITE_KEY},
        fix="must be https")
    row(C, {C: "AccountName=acct;AccountName=other;AccountKey=%s" % AZURITE_KEY}, fix="keep one")
    row(C, {C: "AccountName=acct;AccountKey=%s;BlobEndpoint=ftp://x/acct" % AZURITE_KEY},
        fix="BlobEndpoint must be an http")
    row(C, {C: "AccountNme=acct;AccountKey=%s" % AZURITE_KEY}, fix="unknown setting 'AccountNme'")
    row(C, {C: "just-a-key-%s" % AZURITE_KEY}, fix="unknown setting name; valid are")
    row(C, {C: "just-a-key"}, fix="Name=value pairs")
    row(C, {C: "SharedAccessSignature=sv=2022-11-02&sig=abcd"}, fix="BlobEndpoint|AccountName")
    row("AZURE_STORAGE_CONTAINER_NAME", {"AZURE_STORAGE_CONTAINER_NAME": "Bad_Name"},
        fix="lowercase letters")
    row("AZURE_STORAGE_CONTAINER_NAME", {"AZURE_STORAGE_CONTAINER_NAME": None},
        fix="e.g. soracam-images")
    row("AZURE_STORAGE_API", {"AZURE_STORAGE_API": "adls"}, fix="use blob")
    row("AZURE_STORAGE_API", {"AZURE_STORAGE_API": "dfs", C: conn}, fix="add DfsEndpoint=")
    row("AZURE_STORAGE_ACCOUNT_URL", dict(mi, AZURE_STORAGE_ACCOUNT_URL="ftp://acct.blob.core"),
        fix=r"https://<account>\.blob\.core\.windows\.net")
    row("AZURE_STORAGE_ACCOUNT_URL", {C: None, "AZURE_STORAGE_SAS_TOKEN": "sv=2022&sig=abcd"},
        fix="set it to the storage account's URL")
    row("AZURE_STORAGE_SAS_TOKEN", dict(imds, AZURE_STORAGE_SAS_TOKEN="sv=2022-11-02&sp=rcw"),
        fix="SAS token from the portal")
    row("AZURE_CLIENT_ID", dict(imds, AZURE_CLIENT_ID="not-a-guid"), fix="a GUID like")
    row("IDENTITY_ENDPOINT", dict(mi, IDENTITY_ENDPOINT="http://example.com/msi/token"),
        fix="must be an https:// URL")
    row("IDENTITY_HEADER", dict(mi, IDENTITY_HEADER=None), fix="set both or neither")
    row("IDENTITY_ENDPOINT", dict(mi, IDENTITY_ENDPOINT=None), fix="set both or neither")
    row("SORACAM_IMDS_ENDPOINT", dict(imds, SORACAM_IMDS_ENDPOINT="http://10.0.0.1"),
        fix="link-local or loopback")
    # Sink, template, zone, schedule
    row("SORACAM_SINK", {"SORACAM_SINK": "s3://bucket"}, fix="use azure or dir:PATH")
    row("SORACAM_SINK", {"SORACAM_SINK": "dir:"}, fix="use azure or dir:PATH")
    row(C, {"SORACAM_SINK": "azure", C: None}, fix="copy the connection string")
    T = "SORACAM_PATH_TEMPLATE"
    row(T, {T: "{nope}/{device_id}.jpg"}, fix=r"\{nope\}")
    row(T, {T: "../{device_id}/{epoch}.jpg"}, fix=r"'\.\.' path segment")
    row(T, {T: "/{device_id}/{epoch}.jpg"}, fix="relative path")
    # The record area (.soracam-lake/) and hidden names are out of reach at any depth.
    row(T, {T: ".soracam-lake/tmp/{device_id}_{epoch_ms}.jpg"},
        fix=r"starting with '\.' \('\.soracam-lake'\).*kept for soracam-lake's own records")
    row(T, {T: "cams/.soracam-lake/{device_id}/{epoch}.jpg"}, fix="starting with '.'")
    row(T, {T: "{device_id}/.{epoch}.tmp"}, fix="start every segment with a letter")
    row(T, {T: "./{device_id}/{epoch}.jpg"}, fix=r"'\.' or '\.\.' path segment")
    row(T, {T: "{yyyy}//{device_id}/{epoch}.jpg"}, fix=r"empty, '\.' or '\.\.' path segment")
    row(T, {T: "{yyyy}/{MM}/{dd}/{device_id}.jpg"}, fix="include every date and time part")
    row(T, {T: "{yyyy}{MM}{dd}_{HHmmss}.jpg", "SORACOM_DEVICE_IDS": "7CDDDE000001,7CDDDE000002"},
        fix=r"add \{device_id\}")
    row(T, {T: "{yyyy}{MM}{dd}_{HHmmss}.jpg", "SORACOM_DEVICE_IDS": "all"}, fix=r"add \{device_id\}")
    row("SORACAM_TIMEZONE", {"SORACAM_TIMEZONE": "Mars/Olympus"}, fix=r"such as \+09:00")
    row("SORACAM_TIMEZONE", {"SORACAM_TIMEZONE": "+25:00"}, fix="Asia/Tokyo")
    row("SORACAM_SCHEDULE", {"SORACAM_SCHEDULE": "*/5 * *"}, fix="field")
    row("SORACAM_SCHEDULE", {"SORACAM_SCHEDULE": "0 0 0 31 2 *"}, fix="never fire")
    row("SORACAM_SCHEDULE", {"SORACAM_SCHEDULE": "61 * * * * *"}, fix="range")
    row("SORACAM_SCHEDULE", {"SORACAM_SCHEDULE": "0 */5 * * * MON-XYZ"}, fix="day-of-week|position")
    # Durations, sizes, numbers, enums
    row("SORACAM_CAPTURE_DELAY", {"SORACAM_CAPTURE_DELAY": "soon"}, fix=r"e\.g\. 10, 10s")
    row("SORACAM_CAPTURE_DELAY", {"SORACAM_CAPTURE_DELAY": "11m"}, fix="between 0s and 600s")
    row("SORACAM_EXPORT_TIMEOUT", {"SORACAM_EXPORT_TIMEOUT": "1s"}, fix="between 5s and 600s")
    row("SORACAM_MAX_IMAGE_BYTES", {"SORACAM_MAX_IMAGE_BYTES": "16Q"}, fix=r"e\.g\. 16M")
    row("SORACAM_MAX_IMAGE_BYTES", {"SORACAM_MAX_IMAGE_BYTES": "2G"}, fix="from 1k to 1G")
    row("SORACAM_TOKEN_TIMEOUT", {"SORACAM_TOKEN_TIMEOUT": "60"}, fix="from 180 to 172800")
    row("SORACAM_MAX_IN_FLIGHT", {"SORACAM_MAX_IN_FLIGHT": "0"}, fix="from 1 to 10000")
    row("SORACAM_CA_FILE", {"SORACAM_CA_FILE": "/nonexistent/ca.pem"}, fix="PEM file of CA")
    row("SORACAM_CA_FILE", {"SORACAM_CA_FILE": not_pem}, fix="holds no PEM certificate")
    row("SORACAM_LOG_LEVEL", {"SORACAM_LOG_LEVEL": "verbose"}, fix="use debug, info, warn or error")
    row("SORACAM_LOG_FORMAT", {"SORACAM_LOG_FORMAT": "xml"}, fix="use text or json")
    row("SORACAM_LISTEN", {"SORACAM_LISTEN": "localhost:9464"}, ["daemon"], fix="e.g. 9464")
    row("SORACAM_LISTEN", {"SORACAM_LISTEN": "127.0.0.1:70000"}, ["daemon"], fix="e.g. 9464")
    row("SORACAM_FUNCTION_NAME", {"SORACAM_FUNCTION_NAME": "bad/name"}, ["serve"],
        fix="letters, digits")
    row("FUNCTIONS_CUSTOMHANDLER_PORT", {"FUNCTIONS_CUSTOMHANDLER_PORT": "http"}, ["serve"],
        fix="from 1 to 65535")
    row("FUNCTIONS_CUSTOMHANDLER_PORT", {"FUNCTIONS_CUSTOMHANDLER_PORT": None}, ["serve"],
        fix="give --port 7071")
    row("SORACAM_SHUTDOWN_GRACE", {"SORACAM_SHUTDOWN_GRACE": "forever"}, ["daemon"],
        fix="between 0s and 600s")
    row("SORACAM_POLL_INTERVAL", {"SORACAM_POLL_INTERVAL": "10ms"}, fix="between 0s and 10s")
    row("SORACAM_CATCHUP_WINDOW", {"SORACAM_CATCHUP_WINDOW": "8d"}, ["daemon"], fix="or off")
    row("SORACAM_CATCHUP_MAX", {"SORACAM_CATCHUP_MAX": "0"}, ["daemon"], fix="from 1 to 10000")
    row("SORACAM_MAX_SLOT_ATTEMPTS", {"SORACAM_MAX_SLOT_ATTEMPTS": "1000"}, fix="from 1 to 100")
    row("SORACAM_BUDGET_RESERVE", {"SORACAM_BUDGET_RESERVE": "lots"}, fix="or off")
    row("SORACAM_SHARD", {"SORACAM_SHARD": "3/3"}, fix="0 <= K < N")
    row("SORACAM_SHARD", {"SORACAM_SHARD": "1/0"}, fix="0 <= K < N")
    row("SORACAM_SHARD", {"SORACAM_SHARD": "a/b"}, fix=r"e\.g\. 0/3")
    row("SORACAM_MAX_CONNECTIONS", {"SORACAM_MAX_CONNECTIONS": "0"}, fix="from 1 to 10000")
    # Configuration files
    row("SORACAM_CONFIG_FILE", {"SORACAM_CONFIG_FILE": "/nonexistent/soracam.env"},
        fix="KEY=VALUE")
    row(bad_file + ":2", {"SORACAM_CONFIG_FILE": bad_file}, fix="KEY=VALUE")
    row("SORACAM_SHARD", {"SORACAM_CONFIG_FILE": bad_value_file},
        fix=re.escape("(set in %s:1)" % bad_value_file))
    # The command line
    row("--no-such-flag", argv=["--no-such-flag", "run"], fix="soracam-lake --help")
    row("--listen", argv=["run", "--listen"], fix="requires an argument")
    row("--at", argv=["--at", "yesterday", "run"], fix="ISO-8601")
    row("--at", argv=["--at", iso(now), "daemon"], fix="goes with 'run' only")
    row("--from", argv=["backfill"], fix="needs --from TIME")
    row("--every", argv=["backfill", "--from", iso(now - 3600000), "--every", "0"],
        fix="at least 1s")
    row("--to", argv=["backfill", "--from", iso(now), "--to", iso(now - 3600000)],
        fix="before --from")
    row("--json", argv=["--json", "run"], fix="goes with 'devices'")
    row("runn", argv=["runn"], fix="commands: run, daemon")
    row("unexpected argument", argv=["run", "extra"], fix="'extra'")
    row("usage", argv=[], fix="commands:")
    return R


def test_bad_configuration_table_exits_2_naming_the_setting_without_network(c):
    trip = Tripwire()
    trip2 = Tripwire()
    try:
        flags = settings(c)
        table = rows(c, trip, c.tmp)
        t = "http://127.0.0.1:%d" % trip.port
        base_conn = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;"
                     "BlobEndpoint=%s/devstoreaccount1" % (AZURITE_KEY, t))
        # Every setting with a flag is also tried through its flag, with the same bad value.
        runs = []
        for names, env, argv, fix in table:
            runs.append((names, env, argv, fix))
            k = names[0]
            if flags.get(k) and env.get(k) is not None:
                rest = {n: v for n, v in env.items() if n != k}
                runs.append((("--" + flags[k],), rest, ["--%s=%s" % (flags[k], env[k])] + argv,
                             fix))
        covered = {n for names, _, _, _ in runs for n in names}
        missing = [v for v in flags if v not in covered and v not in EXEMPT]
        check(not missing, "settings without a bad-value row: %s" % missing)
        missing = ["--" + f for f in flags.values() if f and "--" + f not in covered]
        check(not missing, "flags without a bad-value row: %s" % missing)
        check(len(runs) >= 35, "only %d rows" % len(runs))

        failures = []
        t0 = time.monotonic()
        for i, (names, env_changes, argv, fix) in enumerate(runs):
            # Half the rows talk to the fake SORACOM API (its counter must stay 0), half to a
            # listener that counts connections.
            endpoint = c.fake.url if i % 2 else "http://127.0.0.1:%d" % trip2.port
            env = c.env(SORACOM_API_ENDPOINT=endpoint, AZURE_STORAGE_CONNECTION_STRING=base_conn,
                        SORACAM_IMDS_ENDPOINT=t)
            for k, v in env_changes.items():
                if v is None:
                    env.pop(k, None)
                else:
                    env[k] = v
            r = c.run(argv, env, timeout=30)
            lines = [l for l in r.err.splitlines() if any(n in l for n in names)]
            problems = []
            if r.rc != 2:
                problems.append("exit %s, want 2" % r.rc)
            if not lines:
                problems.append("no line names %s" % " or ".join(names))
            elif not any(re.search(fix, l) for l in r.err.splitlines()):
                problems.append("no line says what to fix (/%s/)" % fix)
            for secret in (AUTH_KEY, AZURITE_KEY, BAD_KEY, IDENTITY_HEADER, BAD_AUTH_KEY,
                           BAD_AUTH_KEY[7:14], BAD_AUTH_KEY[-12:]):
                if secret in r.out + r.err:
                    problems.append("prints a secret (%s...)" % secret[:8])
            raw = RAW_CONTROL.search(r.out + r.err)
            if raw:
                problems.append("prints a raw control character U+%04X" % ord(raw.group()))
            if problems:
                shown = {k: ("(%d characters)" % len(v) if v and k in SECRET_VARS else v)
                         for k, v in env_changes.items()}
                failures.append("%s %s %s: %s\n%s" % (" ".join(argv), shown, names,
                                                       "; ".join(problems), r.err.strip()[-800:]))
        elapsed = time.monotonic() - t0
        check(not failures, "%d of %d rows failed:\n%s" % (len(failures), len(runs),
                                                          "\n".join(failures)))
        check(trip.connections() == 0, "a bad configuration connected to an Azure or identity "
                                       "endpoint")
        check(trip2.connections() == 0, "a bad configuration connected to the SORACOM endpoint")
        st = c.fake.stats()
        check(st["requests"] == 0 and st["auth"] == 0, "the fake SORACOM API was contacted: %r"
              % {k: st[k] for k in ("requests", "auth")})
        print("     %d bad configurations (%d settings, %d flags), %.1fs" % (
            len(runs), len(flags), sum(1 for f in flags.values() if f), elapsed))
    finally:
        trip.close()
        trip2.close()
