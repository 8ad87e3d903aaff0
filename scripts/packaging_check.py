#!/usr/bin/env python3
"""Checks of the deployment files that need no container engine and no systemd, for
scripts/packaging-tests.sh.

    packaging_check.py dockerfile Dockerfile       # structure; prints the health-check and CMD argv
    packaging_check.py dockerignore .dockerignore  # the build context keeps what cargo needs
    packaging_check.py unit wsbroker.service       # directives; prints the ExecStart argv

Each prints one line per finding ("FAIL: ...") and exits 1 when there is one; on success it
prints what the shell script needs as JSON on the last line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

FAILS: list[str] = []


def fail(message: str) -> None:
    FAILS.append(message)
    print(f"FAIL: {message}")


def finish(result: object) -> int:
    if FAILS:
        return 1
    print(json.dumps(result))
    return 0


# --- Dockerfile -------------------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: continuation lines joined, comments and blanks dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    if pending:
        fail("Dockerfile: the last instruction ends with a line continuation")
    return out


def exec_form(what: str, args: str) -> list[str]:
    try:
        argv = json.loads(args)
    except json.JSONDecodeError as e:
        fail(f"Dockerfile: {what} is not in exec (JSON) form: {e}")
        return []
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        fail(f"Dockerfile: {what} is not a JSON list of strings")
        return []
    return argv


def check_dockerfile(path: str) -> int:
    ins = instructions(Path(path).read_text())
    stages: list[list[tuple[str, str]]] = []
    names: list[str] = []
    for word, args in ins:
        if word == "FROM":
            stages.append([])
            m = re.search(r"\sAS\s+(\S+)$", args, re.IGNORECASE)
            names.append(m.group(1) if m else "")
        elif stages:
            stages[-1].append((word, args))
        elif word not in ("ARG",):
            fail(f"Dockerfile: {word} before the first FROM")
    if len(stages) < 2:
        fail(f"Dockerfile: {len(stages)} stage(s); a multi-stage build needs a build and a runtime stage")
        return finish({})
    base = [args for word, args in ins if word == "FROM"][-1].split()[0]
    if not re.search(r"(-slim|distroless|alpine|scratch)", base):
        fail(f"Dockerfile: the runtime stage's base '{base}' is not a small image (slim, distroless)")
    final = stages[-1]
    users = [args for word, args in final if word == "USER"]
    if not users:
        fail("Dockerfile: the runtime stage sets no USER (it would run as root)")
    elif users[-1].split(":")[0] in ("root", "0"):
        fail(f"Dockerfile: the runtime stage runs as USER {users[-1]}")
    copies = [args for word, args in final if word == "COPY" and "--from=" in args]
    built = [n for n in names[:-1] if n]
    if not any(re.search(rf"--from=({'|'.join(map(re.escape, built))})\b", c) for c in copies):
        fail(f"Dockerfile: the runtime stage copies nothing from a build stage ({built})")
    exposes = " ".join(args for word, args in final if word == "EXPOSE").split()
    if "61614" not in exposes:
        fail("Dockerfile: the runtime stage does not EXPOSE 61614 (WebSocket, /metrics)")
    health = [args for word, args in final if word == "HEALTHCHECK"]
    if len(health) != 1:
        fail(f"Dockerfile: {len(health)} HEALTHCHECK instructions in the runtime stage, expected 1")
        return finish({})
    options, sep, command = health[0].partition("CMD ")
    if not sep:
        fail("Dockerfile: HEALTHCHECK has no CMD")
        return finish({})
    timeout = re.search(r"--timeout=(\d+)s", options)
    health_argv = exec_form("HEALTHCHECK CMD", command)
    if health_argv and "/metrics" not in " ".join(health_argv):
        fail("Dockerfile: the health check does not request /metrics")
    entry = [args for word, args in final if word == "ENTRYPOINT"]
    cmd = [args for word, args in final if word == "CMD"]
    entry_argv = exec_form("ENTRYPOINT", entry[-1]) if entry else []
    cmd_argv = exec_form("CMD", cmd[-1]) if cmd else []
    if not entry_argv or not entry_argv[0].endswith("/wsbroker"):
        fail("Dockerfile: ENTRYPOINT does not run the wsbroker binary")
    return finish(
        {
            "stages": names,
            "runtime_base": base,
            "user": users[-1] if users else None,
            "health": health_argv,
            "health_timeout": int(timeout.group(1)) if timeout else 30,
            "entrypoint": entry_argv,
            "cmd": cmd_argv,
        }
    )


# --- .dockerignore ----------------------------------------------------------------------------


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore pattern (Go filepath.Match plus **) as a regex on a relative path."""
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i)
            if end < 0:
                out += re.escape(c)
            else:
                out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
                i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def load_rules(path: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        line = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((keep, pattern_regex(line)))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for keep, rx in rules:
        if any(rx.match(p) for p in prefixes):
            result = not keep
    return result


def check_dockerignore(path: str) -> int:
    root = Path(path).resolve().parent
    rules = load_rules(path)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.split()
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--offline", "--format-version", "1"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    needed = {"Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml", "LICENSE-MIT", "LICENSE-APACHE"}
    for package in meta["packages"]:
        if Path(package["manifest_path"]).resolve() != root / "Cargo.toml":
            continue
        for target in package["targets"]:
            src = Path(target["src_path"]).resolve().relative_to(root).as_posix()
            needed.add(src)
            # A target in a directory of its own (benches/suite/main.rs) brings its modules.
            if src.endswith("/main.rs") and src.count("/") > 1:
                needed.update(t for t in tracked if t.startswith(src.rsplit("/", 1)[0] + "/"))
    needed.update(t for t in tracked if t.startswith("src/"))
    for f in sorted(needed):
        if excluded(f, rules):
            fail(f".dockerignore excludes {f}, which the image build needs")
    for f in ("target/release/wsbroker", ".git/HEAD", "tests/interop/node/node_modules/x", ".venv/bin/python"):
        if not excluded(f, rules):
            fail(f".dockerignore keeps {f} in the build context")
    # What `docker build .` would send: every file on disk not excluded.
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        rel = "" if rel == "." else rel + "/"
        dirnames[:] = [d for d in dirnames if not excluded(rel + d, rules) or any(k for k, _ in rules)]
        for name in filenames:
            if not excluded(rel + name, rules):
                files += 1
                size += (Path(dirpath) / name).lstat().st_size
    return finish({"needed": len(needed), "context_files": files, "context_bytes": size})


# --- systemd unit -----------------------------------------------------------------------------


def check_unit(path: str) -> int:
    section = ""
    keys: dict[str, list[str]] = {}
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        keys.setdefault(f"{section}.{key.strip()}", []).append(value.strip())

    def value(key: str) -> str | None:
        values = keys.get(f"Service.{key}")
        return values[-1] if values else None

    nofile = value("LimitNOFILE") or ""
    soft = nofile.split(":")[0]
    if not (soft == "infinity" or (soft.isdigit() and int(soft) >= 65536)):
        fail(f"unit: LimitNOFILE={nofile or '(unset)'}: raise it (>= 65536) for many clients")
    if value("DynamicUser") != "yes" and value("User") in (None, "", "root", "0"):
        fail("unit: runs as root (set DynamicUser=yes or User=)")
    for key, want in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
    }.items():
        if value(key) != want:
            fail(f"unit: {key}={value(key) or '(unset)'}, expected {want}")
    if not value("SystemCallFilter"):
        fail("unit: no SystemCallFilter")
    if not value("RestrictAddressFamilies"):
        fail("unit: no RestrictAddressFamilies")
    if "Install.WantedBy" not in keys:
        fail("unit: no [Install] WantedBy (systemctl enable would do nothing)")
    exec_start = value("ExecStart")
    if not exec_start:
        fail("unit: no ExecStart")
        return finish({})
    argv = exec_start.split()
    if not argv[0].endswith("/wsbroker"):
        fail(f"unit: ExecStart runs {argv[0]}, not the wsbroker binary")
    return finish({"exec_start": argv, "limit_nofile": nofile})


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("dockerfile", "dockerignore", "unit"):
        print(__doc__, file=sys.stderr)
        return 2
    return {"dockerfile": check_dockerfile, "dockerignore": check_dockerignore, "unit": check_unit}[
        sys.argv[1]
    ](sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
