"""Integration cases for the documentation and installation: docs/configuration.md and the
manual page say everything --help says, and `make install` / `make uninstall` do exactly
what they should."""
import os
import re
import shutil
import stat
import subprocess

from harness import ROOT, check

MAN = os.path.join(ROOT, "docs", "soracam-lake.1")
CONFIG_MD = os.path.join(ROOT, "docs", "configuration.md")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def norm(s):
    return re.sub(r"\s+", " ", s).strip().lower()


def help_of(c, *args):
    r = c.run(list(args) + ["--help"], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    check(r.rc == 0 and r.out, "%s --help: %r" % (" ".join(args) or "soracam-lake", r))
    return r.out


class Help:
    """What `soracam-lake --help` lists: commands, flags and environment variables."""

    def __init__(self, text):
        self.text = text
        self.commands, self.flags, self.envs = [], set(), set()
        section = None
        for line in text.splitlines():
            if line and not line.startswith(" "):
                section = line.split(" ")[0].rstrip(":")
                continue
            if section == "commands":
                m = re.match(r"^  (\w+)\s{2,}", line)
                if m:
                    self.commands.append(m.group(1))
            m = re.match(r"^  (\(environment only\)|-\S.*?)\s{2,}([A-Z][A-Z0-9_]+)$", line)
            if m:
                self.envs.add(m.group(2))
            if re.match(r"^  -", line):  # the first column: "-o, --output FILE"
                col = re.split(r"\s{3,}", line.strip())[0]
                self.flags.update(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", col))
        check(len(self.commands) >= 8 and len(self.envs) >= 30 and len(self.flags) >= 30,
              "could not read --help: %d commands, %d variables, %d flags"
              % (len(self.commands), len(self.envs), len(self.flags)))


def man_text():
    """The manual page's words: roff escapes and macro names removed."""
    src = read(MAN)
    lines = []
    for line in src.splitlines():
        if line.startswith('.\\"'):
            continue
        if line.startswith("."):
            parts = line.split(None, 1)
            line = parts[1].replace('"', "") if len(parts) > 1 else ""
            if parts[0] in (".B", ".I", ".BR", ".RB", ".RI", ".IR", ".BI", ".IB"):
                # Alternating fonts join their arguments without spaces, as roff prints them.
                line = "".join(re.findall(r'"[^"]*"|\S+', parts[1])).replace('"', "") \
                    if len(parts) > 1 else ""
        line = re.sub(r"\\f[BIRP]", "", line)
        line = line.replace("\\-", "-").replace("\\&", "").replace("\\:", "")
        line = line.replace("\\e", "\\")
        lines.append(line)
    return "\n".join(lines)


def test_configuration_md_is_generated_and_complete(c):
    r = c.run(["config", "--markdown"], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    check(r.rc == 0, "config --markdown: %r" % r)
    doc = read(CONFIG_MD)
    check(r.out == doc, "docs/configuration.md is out of date: run `make docs`")
    h = Help(help_of(c))
    for env in sorted(h.envs):
        check("`%s`" % env in doc, "docs/configuration.md does not list %s" % env)
    for flag in sorted(h.flags):
        check(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(flag), doc),
              "docs/configuration.md does not list %s" % flag)
    for cmd in h.commands:
        check("| `%s` |" % cmd in doc, "docs/configuration.md does not list the command %s" % cmd)
    # Every default --help shows is in the settings table, in the variable's row.
    for line in h.text.splitlines():
        m = re.search(r"; default (.+)$", line)
        if m:
            check(m.group(1) in doc, "default %r missing from docs/configuration.md"
                  % m.group(1))


def test_man_page_matches_every_help(c):
    text = man_text()
    flat = norm(text)
    h = Help(help_of(c))
    version = read(os.path.join(ROOT, "VERSION")).strip()
    check('"soracam\\-lake %s"' % version in read(MAN), "the manual page is not for version %s"
          % version)
    for env in sorted(h.envs):
        check(env in text, "the manual page does not mention %s" % env)
    for flag in sorted(h.flags):
        check(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(flag), text),
              "the manual page does not mention %s" % flag)
    synopsis = text.split("DESCRIPTION")[0]
    commands = text.split("COMMANDS")[1].split("OPTIONS")[0]
    for cmd in h.commands:
        out = help_of(c, cmd)
        usage = out.splitlines()[0]
        m = re.match(r"usage: soracam-lake \[options\] (.*)$", usage)
        check(m, "%s --help: usage line %r" % (cmd, usage))
        check(norm(m.group(1)) in norm(commands),
              "the manual page's COMMANDS has no entry '%s'" % m.group(1))
        check(re.search(r"(?m)^%s$|^%s " % (cmd, cmd), synopsis) or cmd in synopsis.split(),
              "the manual page's SYNOPSIS lacks %s" % cmd)
        details = out.split("\n\n")[1]
        check(norm(details) in flat, "the manual page does not say what `%s --help` says:\n%s"
              % (cmd, details))
        for line in out.split("options:\n")[1].split("\n\n")[0].splitlines() \
                if "options:\n" in out else []:
            flag, what = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            check(norm(flag) in flat and norm(what) in flat,
                  "the manual page lacks %s's option line %r" % (cmd, line.strip()))
    man = shutil.which("man")
    if man:
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0")
        p = subprocess.run([man, "--warnings", "-E", "UTF-8", "-l", MAN], capture_output=True,
                           timeout=60, env=env)
        check(p.returncode == 0 and b"SORACAM-LAKE(1)" in p.stdout,
              "man -l failed: %r" % p.stderr[-1000:])
        check(p.stderr.strip() == b"", "man -l warns: %s" % p.stderr.decode(errors="replace"))
    else:
        print("     (man is not installed: the rendering check was skipped)")


def make(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env.update(env_extra or {})
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT] + list(args),
                          capture_output=True, timeout=120, env=env)


def tree(root):
    """{relative path: mode} of every file and directory under root."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def test_make_install_and_uninstall(c):
    for prefix, bindir in ((None, "usr/local"), ("/usr", "usr"), ("/opt/soracam", "opt/soracam")):
        dest = os.path.join(c.tmp, "dest-" + bindir.replace("/", "-"))
        os.makedirs(dest)
        args = ["DESTDIR=" + dest, "BIN=" + c.bin, "-o", c.bin]  # the binary under test as is
        if prefix:
            args.append("PREFIX=" + prefix)
        p = make("install", *args)
        check(p.returncode == 0, "make install: %s" % (p.stdout + p.stderr).decode()[-2000:])
        t = tree(dest)
        want = {
            bindir + "/bin/soracam-lake": 0o755,
            bindir + "/share/man/man1/soracam-lake.1": 0o644,
            bindir + "/lib/systemd/system/soracam-lake.service": 0o644,
            "etc/soracam-lake/soracam-lake.env.example": 0o600,
            "etc/soracam-lake": 0o700,
        }
        for path, mode in want.items():
            check(t.get(path) == mode, "%s: mode %s, want %o (tree %r)"
                  % (path, oct(t[path]) if path in t else "missing", mode, sorted(t)))
        files = sorted(p for p in t if not os.path.isdir(os.path.join(dest, p)))
        check(files == sorted(p for p in want if p != "etc/soracam-lake"),
              "install put other files: %r" % files)
        unit = read(os.path.join(dest, bindir, "lib/systemd/system/soracam-lake.service"))
        check("ExecStart=/%s/bin/soracam-lake daemon" % bindir in unit
              and "EnvironmentFile=/etc/soracam-lake/soracam-lake.env" in unit,
              "the unit's paths do not match the install: %r"
              % [l for l in unit.splitlines() if l.startswith(("Exec", "Environment"))])
        check(read(os.path.join(dest, bindir, "share/man/man1/soracam-lake.1")) == read(MAN),
              "the installed manual page differs")
        with open(os.path.join(dest, "etc/soracam-lake/soracam-lake.env.example"), "rb") as f:
            check(f.read() == open(os.path.join(ROOT, "deploy/systemd/soracam-lake.env.example"),
                                   "rb").read(), "the installed example settings differ")
        r = subprocess.run([os.path.join(dest, bindir, "bin/soracam-lake"), "--version"],
                           capture_output=True, timeout=30)
        check(r.returncode == 0 and r.stdout.startswith(b"soracam-lake "),
              "the installed binary does not run: %r" % r)
        # The administrator's own settings beside the example survive an uninstall.
        mine = None
        if prefix == "/usr":
            mine = os.path.join(dest, "etc/soracam-lake/soracam-lake.env")
            with open(mine, "w") as f:
                f.write("SORACOM_AUTH_KEY_ID=keyId-mine\n")
        p = make("uninstall", *args)
        check(p.returncode == 0, "make uninstall: %s" % (p.stdout + p.stderr).decode()[-2000:])
        left = [p for p in tree(dest) if not os.path.isdir(os.path.join(dest, p))]
        if mine:
            check(left == ["etc/soracam-lake/soracam-lake.env"],
                  "uninstall left or removed the wrong files: %r" % left)
        else:
            check(left == [], "uninstall left files behind: %r" % left)
            check(not os.path.exists(os.path.join(dest, "etc/soracam-lake")),
                  "uninstall left the empty settings directory")
        # Uninstalling again is harmless.
        p = make("uninstall", *args)
        check(p.returncode == 0, "a second uninstall failed: %s" % p.stderr.decode()[-1000:])


def test_readmes_cover_every_command_and_setting_in_both_languages(c):
    h = Help(help_of(c))
    en = read(os.path.join(ROOT, "README.md"))
    ja = read(os.path.join(ROOT, "README.ja.md"))
    check("(README.ja.md)" in en and "(README.md)" in ja, "the READMEs do not link each other")
    policy = re.compile(r'"(?:OAuth2|SoraCam):\w+"')
    for name, doc in (("README.md", en), ("README.ja.md", ja)):
        for cmd in h.commands:
            check("`soracam-lake %s" % cmd in doc, "%s does not describe %s" % (name, cmd))
        for env in sorted(h.envs):
            check("`%s`" % env in doc, "%s does not list %s" % (name, env))
        for word in ("soracam-lake check", "AZURE_STORAGE_ACCOUNT_URL", "Storage Blob Data "
                     "Contributor", "make install", "docs/configuration.md"):
            check(word in doc, "%s does not mention %s" % (name, word))
    check(sorted(policy.findall(en)) == sorted(policy.findall(ja)) and policy.findall(en),
          "the minimal SAM policy differs between the READMEs")
    check(re.findall(r"`[A-Z][A-Z0-9_]{3,}`", en) and
          sorted(set(re.findall(r"`[A-Z][A-Z0-9_]{3,}`", en))) ==
          sorted(set(re.findall(r"`[A-Z][A-Z0-9_]{3,}`", ja))),
          "the READMEs name different variables: %r" % sorted(
              set(re.findall(r"`[A-Z][A-Z0-9_]{3,}`", en)) ^
              set(re.findall(r"`[A-Z][A-Z0-9_]{3,}`", ja))))
