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
    observe_json.py comments TSHARK.txt MIGRATIONS.json MIGRATION_ID SERVER_PORT
        TSHARK.txt (tshark -T fields: frame, ip.src, tcp.srcport, ip.dst, tcp.dstport, the
        frame's comments joined by "|") holds one comment "tsmp: migration ID flow F phase P"
        per phase the migration lists, in the same order, each on a packet of the flow (from or
        to the old or the new device, or to or from SERVER_PORT).
    observe_json.py dashboard DOM.html MIGRATIONS.json MIGRATION_ID FLOW_ID
        the dashboard's DOM (headless Chromium's --dump-dom) says it read the proxy, lists the
        migration with its final phase and every phase in order, shows its picture decoded,
        and lists the flow with its device (the new device once spliced).
        Its media section is hidden (that proxy relays no media).
    observe_json.py dashboard-media DOM.html MEDIA.json
        the dashboard's media table lists every session of GET /v1/media (MEDIA.json) with the
        same ID, player, URL, codec and state.
    observe_json.py png FILE WIDTH HEIGHT
        FILE is a PNG of WIDTH x HEIGHT whose pixels are not all alike (a page was drawn).
"""
import re
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


def migration(listing_path, mid):
    with open(listing_path) as f:
        found = [m for m in json.load(f).get("migrations", []) if m.get("id") == mid]
    return found[0] if found else None


def endpoint(e):
    return f"{e['address']}:{e['port']}" if e else None


def comments(path, listing_path, mid, server_port):
    m = migration(listing_path, mid)
    if m is None:
        return fail(f"migration {mid} is not in {listing_path}")
    phases = [p["phase"] for p in m["phases"]]
    ends = {endpoint(m.get("oldDevice")), endpoint(m.get("newDevice"))} - {None}
    seen, where = [], []
    pattern = re.compile(r"tsmp: migration (\d+) flow (\d+) phase ([a-z-]+)")
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 6:
                continue
            frame, src, sport, dst, dport = fields[:5]
            for c in pattern.finditer("\t".join(fields[5:])):
                if int(c.group(1)) != mid:
                    continue
                if int(c.group(2)) != m["flow"]:
                    return fail(f"frame {frame}: comment names flow {c.group(2)}, the migration's is {m['flow']}")
                if not ({f"{src}:{sport}", f"{dst}:{dport}"} & ends or str(server_port) in (sport, dport)):
                    return fail(f"frame {frame} ({src}:{sport} -> {dst}:{dport}) is not a packet of flow {m['flow']}: {c.group(0)}")
                seen.append(c.group(3))
                where.append(f"{c.group(3)}@{frame}")
    if seen != phases:
        return fail(f"capture comments of migration {mid}: {seen}; tsmp migrations lists {phases}")
    print(f"{len(seen)} phase comments in order: {' '.join(where)}")
    return 0


class DashboardDOM:
    """The rows of the dashboard's tables (by their data- attributes), its pictures, whether
    its media section is shown, and whether its script read the proxy."""

    def __init__(self, path):
        from html.parser import HTMLParser
        dom = self

        class Rows(HTMLParser):
            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if tag == "body":
                    dom.state = a.get("data-state")
                elif tag == "section" and a.get("id") == "media-section":
                    dom.media_shown = "hidden" not in a
                elif tag == "tr" and ("data-migration" in a or "data-flow" in a or "data-media" in a):
                    if "data-migration" in a:
                        dom.row = ("migration", a["data-migration"], a.get("data-phase"))
                    elif "data-flow" in a:
                        dom.row = ("flow", a["data-flow"], None)
                    else:
                        dom.row = ("media", a["data-media"], a.get("data-state"))
                    dom.rows[dom.row] = []
                elif tag == "td" and dom.row:
                    dom.rows[dom.row].append("")
                elif tag == "img" and "data-migration" in a:
                    dom.images[a["data-migration"]] = a.get("data-loaded")

            def handle_endtag(self, tag):
                if tag == "tr":
                    dom.row = None

            def handle_data(self, data):
                if dom.row and dom.rows[dom.row]:
                    dom.rows[dom.row][-1] += data

        self.state, self.media_shown, self.rows, self.images, self.row = None, None, {}, {}, None
        with open(path, errors="replace") as f:
            Rows().feed(f.read())


def dashboard(path, listing_path, mid, flow_id):
    m = migration(listing_path, mid)
    if m is None:
        return fail(f"migration {mid} is not in {listing_path}")
    dom = DashboardDOM(path)
    if dom.state != "ok":
        return fail(f"the page did not read the proxy: body data-state={dom.state!r}")
    if dom.media_shown is not False:
        return fail(f"the media section is shown (or missing: {dom.media_shown}) although this proxy relays no media")
    cells = dom.rows.get(("migration", str(mid), m["phase"]))
    if cells is None:
        return fail(f"no row for migration {mid} in phase {m['phase']}; rows: {sorted(k for k in dom.rows if k[0] == 'migration')}")
    phases = [p["phase"] for p in m["phases"]]
    shown = re.findall(r"([a-z-]+) \d+\.\d{3}", " ".join(cells))
    if shown != phases:
        return fail(f"migration {mid}'s row shows phases {shown}, tsmp migrations lists {phases}")
    loaded = dom.images.get(str(mid))
    if not loaded or not re.fullmatch(r"[1-9]\d*x[1-9]\d*", loaded):
        return fail(f"the picture of migration {mid} was not decoded (data-loaded={loaded!r})")
    flow = dom.rows.get(("flow", str(flow_id), None))
    device = endpoint(m.get("newDevice") if m["phase"] == "spliced" else m.get("oldDevice"))
    if flow is None or len(flow) < 2 or flow[1] != device:
        return fail(f"flow {flow_id} is not listed with device {device}: {flow}")
    print(f"migration {mid}: {' -> '.join(shown)}, picture {loaded}; flow {flow_id}: {' | '.join(flow[:5])}")
    return 0


def dashboard_media(path, media_path):
    """Every session of GET /v1/media (MEDIA.json, read right after the DOM) is a row of the
    page's media table with the same ID, player, URL, codec and state, and a packet count no
    larger than the listing's."""
    with open(media_path) as f:
        sessions = json.load(f)["sessions"]
    dom = DashboardDOM(path)
    if dom.state != "ok":
        return fail(f"the page did not read the proxy: body data-state={dom.state!r}")
    if not dom.media_shown:
        return fail("the media section is hidden although the proxy relays media")
    if not sessions:
        return fail(f"{media_path} lists no media session")
    shown = []
    for m in sessions:
        cells = dom.rows.get(("media", m["id"], m["state"]))
        if cells is None:
            return fail(f"no row for media session {m['id']} ({m['state']}); rows: {sorted(k for k in dom.rows if k[0] == 'media')}")
        want = [m["id"], m["device"], m["url"], m.get("codec") or "", m["state"]]
        if cells[:5] != want:
            return fail(f"media session {m['id']}'s row shows {cells[:5]}, GET /v1/media says {want}")
        if not cells[5].isdigit() or not 0 < int(cells[5]) <= m["packets"]:
            return fail(f"media session {m['id']}'s row shows {cells[5]!r} packets, GET /v1/media {m['packets']} a moment later")
        shown.append(" | ".join(cells))
    print("; ".join(shown))
    return 0


def png(path, width, height):
    import struct
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return fail(f"{path} is not a PNG ({len(data)} bytes)")
    w, h = struct.unpack(">II", data[16:24])
    if (w, h) != (width, height):
        return fail(f"{path} is {w}x{h}, not {width}x{height}")
    at, idat = 8, b""
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"IDAT":
            idat += data[at + 8:at + 8 + length]
        at += 12 + length
    pixels = zlib.decompress(idat)
    if len(set(pixels[:: max(1, len(pixels) // 200000)])) < 8:
        return fail(f"{path}: the image is (nearly) blank")
    print(f"{w}x{h} PNG, {len(data)} bytes")
    return 0


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "check":
        return check(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    if len(sys.argv) == 5 and sys.argv[1] == "svg":
        return svg(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    if len(sys.argv) == 4 and sys.argv[1] == "jsonlines":
        return jsonlines(sys.argv[2], int(sys.argv[3]))
    if len(sys.argv) == 6 and sys.argv[1] == "comments":
        return comments(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    if len(sys.argv) == 6 and sys.argv[1] == "dashboard":
        return dashboard(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    if len(sys.argv) == 4 and sys.argv[1] == "dashboard-media":
        return dashboard_media(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 5 and sys.argv[1] == "png":
        return png(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    print(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main())
