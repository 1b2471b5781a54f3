#!/usr/bin/env python3
"""Fail if any dependency in the build graph is not under a permissive licence.

Reads `cargo metadata` (the resolved graph for this platform, all features),
parses each package's SPDX expression and requires that it can be satisfied
with permissive licences only: an `OR` needs one permissive side, an `AND`
needs both. GPL, LGPL-only, AGPL, EUPL, SSPL and unknown licences fail.
Usage: scripts/check-licences.py [--manifest-path DIR/Cargo.toml] [--list]
"""
import json
import re
import subprocess
import sys

PERMISSIVE = {
    "MIT", "MIT-0", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause",
    "BSD-3-Clause", "ISC", "Zlib", "Unicode-3.0", "Unicode-DFS-2016", "CC0-1.0",
    "OpenSSL", "0BSD", "BSL-1.0", "Unlicense",
    "NCSA",  # LLVM libFuzzer (fuzz crate only): BSD-style
}


def tokens(expr):
    return re.findall(r"\(|\)|[A-Za-z0-9.+-]+(?: WITH [A-Za-z0-9.+-]+)?", expr.replace("/", " OR "))


def satisfiable(expr):
    """Evaluate an SPDX expression: True when permissive licences suffice."""
    toks = tokens(expr)
    pos = 0

    def atom():
        nonlocal pos
        if pos >= len(toks):
            raise ValueError(f"incomplete expression {expr!r}")
        t = toks[pos]
        pos += 1
        if t == "(":
            v = disj()
            if pos >= len(toks) or toks[pos] != ")":
                raise ValueError(f"unbalanced parentheses in {expr!r}")
            pos += 1
            return v
        return t in PERMISSIVE

    def conj():
        nonlocal pos
        v = atom()
        while pos < len(toks) and toks[pos] == "AND":
            pos += 1
            v = atom() and v
        return v

    def disj():
        nonlocal pos
        v = conj()
        while pos < len(toks) and toks[pos] == "OR":
            pos += 1
            v = conj() or v
        return v

    v = disj()
    if pos != len(toks):
        raise ValueError(f"cannot parse licence expression {expr!r}")
    return v


def self_test():
    cases = [("MIT OR Apache-2.0", True), ("GPL-3.0-only", False), ("MIT AND GPL-2.0", False),
             ("(MIT OR Apache-2.0) AND Unicode-3.0", True), ("LGPL-2.1-only OR MIT", True),
             ("MIT/Apache-2.0", True), ("Apache-2.0 WITH LLVM-exception OR MIT", True),
             ("AGPL-3.0-only", False), ("EUPL-1.2", False), ("SSPL-1.0 OR MIT", True),
             ("LGPL-3.0-or-later", False)]
    for expr, want in cases:
        assert satisfiable(expr) == want, expr
    print(f"licence checker self-test: {len(cases)} expressions judged as expected")


def main():
    args = sys.argv[1:]
    if args == ["--self-test"]:
        self_test()
        return 0
    listing = "--list" in args
    args = [a for a in args if a != "--list"]
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--all-features", *args]))
    workspace = set(meta["workspace_members"])
    bad = []
    seen = 0
    for p in sorted(meta["packages"], key=lambda p: (p["name"], p["version"])):
        lic = p.get("license")
        name = f'{p["name"]} {p["version"]}'
        if p["id"] in workspace:
            if lic != "MIT OR Apache-2.0":
                bad.append(f"{name}: our own crates are MIT OR Apache-2.0, found {lic!r}")
            continue
        seen += 1
        if not lic:
            bad.append(f"{name}: no SPDX licence (license-file {p.get('license_file')!r})")
            continue
        try:
            ok = satisfiable(lic)
        except ValueError as e:
            bad.append(f"{name}: {e}")
            continue
        if listing:
            print(f"{'ok ' if ok else 'BAD'} {name}: {lic}")
        if not ok:
            bad.append(f"{name}: {lic} is not permissive")
    if bad:
        print("licence check FAILED:", *bad, sep="\n  ", file=sys.stderr)
        return 1
    print(f"licence check: {seen} dependencies, all permissive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
