#!/usr/bin/env python3
"""Checks what an operator sees of one migration (issue "Operator experience"), for the e2e cases.

    observe_json.py check MIGRATIONS.json EVENTS.jsonl MIGRATION_ID PHASE
        `tsmp migrations --json` lists the migration ending in PHASE, with requested first and
        old-device-cut among its phases; the `tsmp events --json` lines hold exactly its phases
        as migration-phase events, in order, after the flow's flow-new. Prints one summary line;
        exit status 1 with the reason otherwise.
    observe_json.py svg FILE.svg MIGRATIONS.json MIGRATION_ID
        the SVG of `tsmp migrations --show ID --svg` parses, labels every phase of the migration,
        has a group per series with as many marks as it declares, and, when spliced, the new
        device's acks are there.
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


def svg(path, listing_path, mid):
    import xml.etree.ElementTree as ET
    ns = "{http://www.w3.org/2000/svg}"
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        return fail(f"{path} is not well-formed: {e}")
    with open(listing_path) as f:
        m = [x for x in json.load(f)["migrations"] if x["id"] == mid][0]
    want = {p["phase"] for p in m["phases"]}
    drawn = {e.get("data-phase") for e in root.iter() if e.get("data-phase")}
    if drawn != want:
        return fail(f"{path}: phases drawn {sorted(drawn)}, the migration has {sorted(want)}")
    counts = {}
    for g in root.iter(ns + "g"):
        name = g.get("data-series")
        if name is None:
            continue
        marks = len(g.findall(ns + "line")) + len(g.findall(ns + "circle"))
        if marks != int(g.get("data-points", "-1")):
            return fail(f"{path}: series {name} has {marks} marks, declares {g.get('data-points')}")
        counts[name] = marks
    if len(counts) != 5:
        return fail(f"{path}: series groups {sorted(counts)}")
    # The old device may have acknowledged everything before the pause (a paced download):
    # then nothing of it is drawn. The new device's handshake ACK always is.
    if m["phase"] == "spliced" and counts["new-device-ack"] < 1:
        return fail(f"{path}: spliced, but no acks of the new device drawn ({counts})")
    print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
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
    if len(sys.argv) == 5 and sys.argv[1] == "svg":
        return svg(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    if len(sys.argv) == 4 and sys.argv[1] == "jsonlines":
        return jsonlines(sys.argv[2], int(sys.argv[3]))
    print(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main())
