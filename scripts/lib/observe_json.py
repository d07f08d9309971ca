#!/usr/bin/env python3
"""Checks what an operator sees of one migration (issue "Operator experience"), for the e2e cases.

    observe_json.py check MIGRATIONS.json EVENTS.jsonl MIGRATION_ID PHASE
        `tsmp migrations --json` lists the migration ending in PHASE, with requested first and
        old-device-cut among its phases; the `tsmp events --json` lines hold exactly its phases
        as migration-phase events, in order, after the flow's flow-new. Prints one summary line;
        exit status 1 with the reason otherwise.
    observe_json.py jsonlines FILE COUNT
        FILE holds COUNT lines, each one JSON object (what `--json --watch` prints).
"""
import json
import sys


def fail(why):
    print(why)
    return 1


def check(listing_path, events_path, mid, want):
    with open(listing_path) as f:
        listing = json.load(f)
    found = [m for m in listing.get("migrations", []) if m.get("id") == mid]
    if not found:
        return fail(f"migration {mid} is not in tsmp migrations --json ({len(listing.get('migrations', []))} listed)")
    m = found[0]
    phases = [p["phase"] for p in m.get("phases", [])]
    if m.get("phase") != want or not phases or phases[-1] != want:
        return fail(f"migration {mid}: phase {m.get('phase')}, phases {phases}, expected to end {want}")
    if phases[0] != "requested" or "old-device-cut" not in phases:
        return fail(f"migration {mid}: phases {phases} lack requested or old-device-cut")
    events = []
    with open(events_path) as f:
        for n, line in enumerate(f, 1):
            try:
                events.append(json.loads(line))
            except ValueError:
                return fail(f"events line {n} is not JSON: {line[:120]!r}")
    mine = [e["event"] for e in events if e["event"].get("migration") == mid]
    seen = [e.get("phase") for e in mine if e.get("kind") == "migration-phase"]
    if seen != phases:
        return fail(f"tsmp events saw phases {seen} of migration {mid}, tsmp migrations lists {phases}")
    flow = m.get("flow")
    news = [e["event"]["seq"] for e in events if e["event"].get("kind") == "flow-new" and e["event"].get("flow") == flow]
    if not news:
        return fail(f"tsmp events has no flow-new of flow {flow}")
    print(f"migration {mid} of flow {flow}: {' -> '.join(phases)} in {m['phases'][-1]['seconds']:.3f} s, "
          f"{m.get('bytesCached')} bytes cached, cut {m.get('cutOffsetToDevice')}/{m.get('cutOffsetToServer')}; "
          f"{len(events)} events, {len(seen)} of its phases")
    return 0


def jsonlines(path, count):
    with open(path) as f:
        lines = f.read().splitlines()
    if len(lines) != count:
        return fail(f"{path}: {len(lines)} lines, expected {count}")
    for n, line in enumerate(lines, 1):
        try:
            if not isinstance(json.loads(line), dict):
                return fail(f"{path} line {n} is not a JSON object")
        except ValueError:
            return fail(f"{path} line {n} is not JSON: {line[:120]!r}")
    return 0


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "check":
        return check(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    if len(sys.argv) == 4 and sys.argv[1] == "jsonlines":
        return jsonlines(sys.argv[2], int(sys.argv[3]))
    print(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main())
