"""Integration cases for `soracam-lake gallery`: a day of the sink as one HTML page, rendered
by headless Chromium, from a directory, Azurite and the fake DFS endpoint."""
import base64
import datetime
import hashlib
import html.parser
import os
import shutil
import struct
import subprocess
import time
import zlib

from harness import DEVICES, Tripwire, check, iso

JST = datetime.timezone(datetime.timedelta(hours=9))
FIVE_MIN = 300000


# ---- reading the page ------------------------------------------------------------------

class Page(html.parser.HTMLParser):
    """What a gallery page shows: the summary, each camera's section and its tiles in order."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.summary = None
        self.sections = []  # dicts: attrs, counts (text), tiles
        self.tags = set()
        self.refs = []  # every src/href value
        self._stack = []  # open elements we capture text of: (tag, target dict, key)
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        for k in ("src", "href"):
            if k in a:
                self.refs.append(a[k])
        cls = a.get("class", "").split()
        if tag == "p" and a.get("id") == "summary":
            self.summary = dict(a, text="")
            self._stack.append(("p", self.summary, "text"))
        elif tag == "section":
            self.sections.append({"attrs": a, "counts": "", "tiles": []})
        elif tag == "span" and "counts" in cls and self.sections:
            self._stack.append(("span", self.sections[-1], "counts"))
        elif tag == "figure" and self.sections:
            self.sections[-1]["tiles"].append({"class": cls, "attrs": a, "img": None, "why": "",
                                               "caption": ""})
        elif tag == "img" and self.sections and self.sections[-1]["tiles"]:
            self.sections[-1]["tiles"][-1]["img"] = a
        elif tag == "span" and "why" in cls and self.sections:
            self._stack.append(("span", self.sections[-1]["tiles"][-1], "why"))
        elif tag == "figcaption" and self.sections:
            self._stack.append(("figcaption", self.sections[-1]["tiles"][-1], "caption"))

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1][0] == tag:
            self._stack.pop()

    def handle_data(self, data):
        if self._stack:
            _, target, key = self._stack[-1]
            target[key] += data

    def section(self, device):
        for s in self.sections:
            if s["attrs"].get("data-device") == device:
                return s
        raise AssertionError("no section for camera %s in %r"
                             % (device, [s["attrs"].get("data-device") for s in self.sections]))


def tile_ms(t):
    a = t["attrs"]
    return int(a["data-ms"]) if "data-ms" in a else int(a["data-from-ms"])


def jpeg_size(data):
    """(width, height) from a JPEG's frame header, or None."""
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        return None
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        m, n = data[i + 1], (data[i + 2] << 8) | data[i + 3]
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + n
    return None


def check_tiles(sec, stored, gaps, unreadable=()):
    """A section holds exactly the stored slots (with thumbnails) and gap runs, in time order,
    and its counts say so. gaps: {slot ms: reason substring} for single-slot gaps checked by
    reason; every other due slot must be in some gap run."""
    tiles = sec["tiles"]
    order = [tile_ms(t) for t in tiles]
    check(order == sorted(order), "tiles out of time order: %r" % order)
    shots = [t for t in tiles if "shot" in t["class"]]
    got = sorted(int(t["attrs"]["data-ms"]) for t in shots)
    check(got == sorted(stored), "stored tiles %r, want %r" % (got, sorted(stored)))
    digests = set()
    for t in shots:
        ms = int(t["attrs"]["data-ms"])
        if ms in unreadable:
            check("unreadable" in t["class"] and t["img"] is None and t["why"],
                  "unreadable image at %d not shown as such: %r" % (ms, t))
            continue
        src = (t["img"] or {}).get("src", "")
        check(src.startswith("data:image/jpeg;base64,"), "tile %d has no inline JPEG" % ms)
        data = base64.b64decode(src.split(",", 1)[1])
        check(jpeg_size(data) == (240, 135), "thumbnail of %d is %r, not a 240x135 JPEG"
              % (ms, jpeg_size(data)))
        check(len(data) < 40000, "thumbnail of %d is %d bytes" % (ms, len(data)))
        digests.add(hashlib.md5(data).hexdigest())
    check(len(digests) == len(stored) - len(unreadable), "thumbnails repeat across slots")
    runs = [t for t in tiles if "gap" in t["class"]]
    missing = sum(int(t["attrs"]["data-slots"]) for t in runs)
    for ms, why in gaps.items():
        run = [t for t in runs if int(t["attrs"]["data-from-ms"]) == ms]
        check(run and run[0]["attrs"]["data-slots"] == "1" and why in run[0]["why"],
              "slot %d: no gap saying %r in %r" % (ms, why, [t["why"] for t in runs][:8]))
    for t in runs:
        check(t["why"].strip(), "a gap without its reason: %r" % t)
    a = sec["attrs"]
    check(int(a["data-stored"]) == len(stored) and int(a["data-missing"]) == missing,
          "section counts %r disagree with its tiles (%d stored, %d missing)"
          % (a, len(stored), missing))
    check(sec["counts"].strip() == "%d stored, %d missing" % (len(stored), missing),
          "counts shown as %r" % sec["counts"])
    return missing


# ---- Chromium ---------------------------------------------------------------------------

def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    check(exe is not None, "chromium is not installed: run scripts/setup.sh --test")
    return exe


def render(c, page, width=1280, height=1400):
    """Opens page in headless Chromium: (the DOM after loading, the screenshot's bytes)."""
    shot = os.path.join(c.tmp, "shot.png")
    profile = os.path.join(c.tmp, "chromium-profile")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": c.tmp}
    p = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--hide-scrollbars", "--user-data-dir=" + profile,
                        "--window-size=%d,%d" % (width, height), "--screenshot=" + shot,
                        "--dump-dom", "file://" + page],
                       capture_output=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    check(p.returncode == 0 and os.path.exists(shot),
          "chromium failed (exit %s): %s" % (p.returncode, p.stderr.decode(errors="replace")[-2000:]))
    with open(shot, "rb") as f:
        return p.stdout.decode(), f.read()


def check_png(data, width, height):
    """A valid PNG of that size whose pixels are far from uniform."""
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        check(zlib.crc32(kind + body) == crc, "PNG chunk %r has a bad CRC" % kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    check(ihdr is not None and ihdr[:2] == (width, height), "PNG header %r" % (ihdr,))
    raw = zlib.decompress(idat)
    bpp = {2: 3, 6: 4}.get(ihdr[3], 1)
    check(len(raw) == height * (1 + width * bpp), "PNG data does not fill the picture")
    distinct = len(set(raw[::7]))
    check(distinct > 100, "the screenshot is nearly uniform (%d distinct byte values)" % distinct)


# ---- the environment --------------------------------------------------------------------

def dir_env(c, **kw):
    out = os.path.join(c.tmp, "captures")
    env = c.env(AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_CONTAINER_NAME=None,
                SORACAM_SINK="dir:" + out, SORACOM_DEVICE_ID=None,
                SORACOM_DEVICE_IDS=",".join(DEVICES), SORACAM_CAPTURE_DELAY="0",
                SORACAM_EXPORT_TIMEOUT="5s", SORACAM_TIMEZONE="Asia/Tokyo")
    for k, v in kw.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env, out


def jst_day(days_ago):
    """(YYYY-MM-DD, UTC ms of its midnight) of a day in Japan."""
    d = (datetime.datetime.now(JST) - datetime.timedelta(days=days_ago)).date()
    start = datetime.datetime(d.year, d.month, d.day, tzinfo=JST)
    return d.isoformat(), int(start.timestamp()) * 1000


def capture(c, env, slots, rc=0):
    for s in slots:
        r = c.run(["run", "--at", iso(s)], env)
        check(r.rc == rc, "run --at %s: %r" % (iso(s), r))


# ---- cases ------------------------------------------------------------------------------

def test_gallery_day_rendered_in_chromium(c):
    c.fake.config(export_delay_ms=200)
    env, out = dir_env(c)
    day, start = jst_day(2)
    both = [start, start + FIVE_MIN, start + 120 * FIVE_MIN]
    capture(c, env, [start - FIVE_MIN] + both)  # 23:55 the day before: not on the page
    # No footage for camera 1 at 00:10: a marker records why.
    c.fake.faults({"op": "export_post", "device": DEVICES[0], "action": "terminal:failed",
                   "count": 1})
    capture(c, env, [start + 2 * FIVE_MIN], rc=1)
    # Camera 2: an accepted export not stored yet (00:15), and a damaged image (00:20).
    jdir = os.path.join(out, ".soracam-lake", "exports", DEVICES[1])
    os.makedirs(jdir, exist_ok=True)
    open(os.path.join(jdir, "%d.0a1b2c3d-export" % (start + 3 * FIVE_MIN)), "w").close()
    t = time.gmtime((start + 4 * FIVE_MIN) // 1000 + 9 * 3600)
    bad = os.path.join(out, time.strftime("%Y/%m/%d", t), DEVICES[1],
                       time.strftime("soracam_%Y%m%d_%H%M%S_000.jpg", t))
    with open(bad, "wb") as f:
        f.write(b"\xff\xd8 not really a picture \xff\xd9")

    # Only the storage is read: no AuthKey needed, and SORACOM is never called.
    wire = Tripwire()
    try:
        genv = dict(env, SORACOM_API_ENDPOINT="http://127.0.0.1:%d" % wire.port)
        genv.pop("SORACOM_AUTH_KEY")
        genv.pop("SORACOM_AUTH_KEY_ID")
        page = os.path.join(c.tmp, "day.html")
        r = c.run(["gallery", "--date", day, "-o", page], genv)
        check(r.rc == 0, "gallery failed: %r" % r)
        check(wire.connections() == 0, "gallery called SORACOM")
    finally:
        wire.close()
    check(r.seconds < 10, "gallery took %.1fs" % r.seconds)
    check("2 camera(s), 8 stored" in r.err, "no summary line: %r" % r.err[-600:])
    text = open(page, encoding="utf-8").read()
    check(not [f for f in os.listdir(c.tmp) if f.endswith(".tmp")], "a temporary file was left")

    dom, png = render(c, page)
    check_png(png, 1280, 1400)
    for doc, what in ((text, "the file"), (dom, "Chromium's DOM")):
        p = Page(doc)
        check(not ({"script", "link", "iframe", "object"} & p.tags), "%s has active or linked "
              "content: %r" % (what, p.tags))
        check(all(u.startswith("data:") for u in p.refs), "%s refers outside itself: %r"
              % (what, [u[:60] for u in p.refs if not u.startswith("data:")]))
        check([s["attrs"]["data-device"] for s in p.sections] == DEVICES,
              "%s: sections %r" % (what, [s["attrs"] for s in p.sections]))
        m0 = check_tiles(p.section(DEVICES[0]), both,
                         {start + 2 * FIVE_MIN: "no footage yet (1 of 3 attempts): SORACOM could "
                                                "not export"})
        m1 = check_tiles(p.section(DEVICES[1]), both + [start + 2 * FIVE_MIN,
                                                        start + 4 * FIVE_MIN],
                         {start + 3 * FIVE_MIN: "export 0a1b2c3d-export was accepted"},
                         unreadable={start + 4 * FIVE_MIN})
        check((m0, m1) == (285, 283), "%s: missing %r, want 285 and 283 of 288 slots"
              % (what, (m0, m1)))
        s = p.summary
        check(s and s["data-stored"] == "8" and s["data-missing"] == "568"
              and "8 stored, 568 missing" in s["text"], "%s: summary %r" % (what, s))
        first = p.section(DEVICES[0])["tiles"][0]
        check(first["caption"].strip() == "00:00", "the day does not start at 00:00 in "
              "Asia/Tokyo: %r" % first)

    # Without -o the same page goes to standard output.
    r = c.run(["gallery", "--date", day], env)
    check(r.rc == 0 and r.out.startswith("<!DOCTYPE html>") and r.out.rstrip().endswith("</html>"),
          "stdout page: %r" % r)
    check(len(Page(r.out).section(DEVICES[1])["tiles"]) == len(Page(text).section(DEVICES[1])["tiles"]),
          "stdout and file pages differ")


def test_gallery_bad_date_and_misplaced_options_exit_2(c):
    env, _ = dir_env(c)
    for bad in ("2026-02-30", "2026-13-01", "26-11-2026", "yesterday", "2026-11-26T00:00"):
        r = c.run(["gallery", "--date", bad], env)
        check(r.rc == 2 and "--date" in r.err and bad in r.err and "YYYY-MM-DD" in r.err
              and not r.out, "bad date %r: %r" % (bad, r))
    r = c.run(["run", "--date", "2026-11-26"], env)
    check(r.rc == 2 and "--date goes with 'gallery'" in r.err, "--date with run: %r" % r)
    r = c.run(["check", "-o", "x.html"], env)
    check(r.rc == 2 and "goes with 'gallery'" in r.err, "-o with check: %r" % r)
    r = c.run(["gallery", "--help"], env)
    check(r.rc == 0 and "--date YYYY-MM-DD" in r.out and "-o, --output FILE" in r.out,
          "gallery --help: %r" % r)


def test_gallery_today_counts_only_due_slots(c):
    """Slots still to come are not gaps; a future day has none at all."""
    env, out = dir_env(c, SORACAM_TIMEZONE="+09:00")
    day, start = jst_day(0)

    def due(now_ms):
        return sum(1 for k in range(288) if start + k * FIVE_MIN + 5000 <= now_ms)

    before = due(time.time() * 1000)
    r = c.run(["gallery", "--date", day], env)
    after = due(time.time() * 1000)
    check(r.rc == 0, "gallery failed: %r" % r)
    p = Page(r.out)
    for dev in DEVICES:
        a = p.section(dev)["attrs"]
        missing, later = int(a["data-missing"]), int(a["data-not-due"])
        check(before <= missing <= after and missing + later == 288,
              "%s: %d missing, %d not due; %d..%d slots were due" % (dev, missing, later, before,
                                                                     after))
    tomorrow = (datetime.datetime.now(JST) + datetime.timedelta(days=1)).date().isoformat()
    r = c.run(["gallery", "--date", tomorrow], env)
    p = Page(r.out)
    check(r.rc == 0 and p.summary["data-missing"] == "0" and p.summary["data-not-due"] == "576",
          "tomorrow: %r" % (p.summary,))


def test_gallery_finds_cameras_in_azure_blob(c):
    """No camera configured: those the container holds that day, read over the Blob API."""
    c.fake.config(export_delay_ms=200)
    env = c.env(SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=",".join(DEVICES),
                SORACAM_CAPTURE_DELAY="0")
    day = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)).date()
    start = int(datetime.datetime(day.year, day.month, day.day,
                                  tzinfo=datetime.timezone.utc).timestamp()) * 1000
    slots = [start + 6 * FIVE_MIN, start + 7 * FIVE_MIN]
    capture(c, env, slots)
    r = c.run(["gallery", "--date", day.isoformat()],
              c.env(SORACOM_DEVICE_ID=None, SORACOM_AUTH_KEY=None))
    check(r.rc == 0, "gallery failed: %r" % r)
    p = Page(r.out)
    check([s["attrs"]["data-device"] for s in p.sections] == DEVICES,
          "cameras found: %r" % [s["attrs"] for s in p.sections])
    for dev in DEVICES:
        check_tiles(p.section(dev), slots, {})
    # One camera asked for: only its section.
    r = c.run(["gallery", "--date", day.isoformat(), "--device", DEVICES[1]],
              c.env(SORACOM_AUTH_KEY=None))
    p = Page(r.out)
    check(r.rc == 0 and [s["attrs"]["data-device"] for s in p.sections] == [DEVICES[1]],
          "--device: %r" % r)


def test_gallery_over_the_dfs_api(c):
    from it_azure import dfs, dfs_env
    d = dfs(c)
    c.fake.config(export_delay_ms=200)
    env = dfs_env(c, d, SORACOM_DEVICE_ID=None, SORACOM_DEVICE_IDS=DEVICES[0],
                  SORACAM_CAPTURE_DELAY="0")
    day = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).date()
    start = int(datetime.datetime(day.year, day.month, day.day,
                                  tzinfo=datetime.timezone.utc).timestamp()) * 1000
    slots = [start + 30 * FIVE_MIN]
    capture(c, env, slots)
    r = c.run(["gallery", "--date", day.isoformat()], env)
    check(r.rc == 0, "gallery failed: %r" % r)
    check_tiles(Page(r.out).section(DEVICES[0]), slots, {})
    check(d.log("read"), "no DFS read was made")


def test_gallery_288_slots_of_4_cameras_is_fast_and_small(c):
    """A full day of a fleet: bounded time and memory (images are read a few at a time)."""
    c.fake.config(export_delay_ms=200)
    env, out = dir_env(c, SORACAM_TIMEZONE="UTC", SORACOM_DEVICE_IDS=DEVICES[0])
    day = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=5)).date()
    start = int(datetime.datetime(day.year, day.month, day.day,
                                  tzinfo=datetime.timezone.utc).timestamp()) * 1000
    capture(c, env, [start])
    t = time.gmtime(start // 1000)
    sample = open(os.path.join(out, time.strftime("%Y/%m/%d", t), DEVICES[0],
                               time.strftime("soracam_%Y%m%d_%H%M%S_000.jpg", t)), "rb").read()
    cams = ["7CDDDE%06X" % (0x200 + i) for i in range(4)]
    for cam in cams:
        for k in range(288):
            t = time.gmtime(start // 1000 + k * 300)
            p = os.path.join(out, time.strftime("%Y/%m/%d", t), cam,
                             time.strftime("soracam_%Y%m%d_%H%M%S_000.jpg", t))
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(sample)
    page = os.path.join(c.tmp, "fleet.html")
    genv = dict(env)
    genv.pop("SORACOM_DEVICE_IDS")
    t0 = time.monotonic()
    proc = subprocess.Popen([c.bin, "gallery", "--date", day.isoformat(), "-o", page], env=genv,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    c.h.outputs.append(err.encode())
    check(proc.returncode == 0, "gallery failed (%s): %s" % (proc.returncode, err[-2000:]))
    sanitized = "ASAN_OPTIONS" in os.environ
    check(seconds < (60 if sanitized else 15), "1152 images took %.1fs" % seconds)
    rss_mb = usage.ru_maxrss / 1024
    check(sanitized or rss_mb < 64, "peak memory %.0f MB for 1152 images" % rss_mb)
    p = Page(open(page, encoding="utf-8").read())
    check([s["attrs"]["data-device"] for s in p.sections] == [DEVICES[0]] + cams,
          "cameras: %r" % [s["attrs"]["data-device"] for s in p.sections])
    for cam in cams:
        s = p.section(cam)
        check(s["attrs"]["data-stored"] == "288" and s["attrs"]["data-missing"] == "0"
              and len(s["tiles"]) == 288, "%s: %r" % (cam, s["attrs"]))
    size = os.path.getsize(page)
    check(size < 1152 * 20000, "the page is %d bytes" % size)
    print("     (1152 images: %.1fs, %.0f MB peak, page %.1f MB)" % (seconds, rss_mb, size / 1e6))
