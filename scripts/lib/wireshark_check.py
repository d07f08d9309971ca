#!/usr/bin/env python3
"""The Wireshark view of a migration: tshark's TCP analysis of what the server and the new
device saw, as a judge (e2e test-70).

    wireshark_check.py --srv SRV.pcap --phone PHONE.pcap --laptop LAPTOP.pcap --port 9000 \
        --from EPOCH --to EPOCH --events EVENTS.jsonl --migration ID [--min-stall 0.002]

Every packet between --from (the request) and --to (the sample after the splice) that tshark
flags as a retransmission of any kind, out of order, "ACKed unseen segment" or "previous
segment not captured" fails the check, with one exception that the captures themselves prove:

A tail-loss probe (RFC 8985 §7) the server sent for data it sent while the flow was an ordinary
spliced flow (before the pause, toward the old device, or after the splice, toward the new one;
the times are the proxy's, the migration's paused and spliced lines of `tsmp events --json`),
when the gateway held that data or the device's ACK of it for at least --min-stall seconds on the
way (measured between the captures, which share a clock). Linux's probe timeout is
2 x SRTT + 2 ms, about 2.5 ms at the lab's 0.2 ms RTT: such a probe is the user-space proxy's
forwarding latency on a busy host, which plain splicing shows too, not damage done by the
migration. The probe's copy forwarded to a device (tshark calls it a spurious retransmission
there) goes with it. Each excused probe is printed with the delay that explains it. Nothing else
is excused: not a fast retransmission, nothing sent while the proxy holds the flow (from the
pause to the splice), not a probe whose data crossed the gateway promptly.

Exit status 0 when nothing is left unexcused, 1 otherwise, 2 on bad input.
"""
import argparse
import json
import subprocess
import sys

FLAGS = ["retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order",
         "ack_lost_segment", "lost_segment"]
MOD = 1 << 32


def seq_le(a, b):
    """a <= b in sequence space (RFC 793 §3.3)."""
    return (b - a) % MOD < (1 << 31)


def read(pcap):
    fields = ["frame.number", "frame.time_epoch", "tcp.srcport", "tcp.dstport", "tcp.seq_raw",
              "tcp.ack_raw", "tcp.len"] + ["tcp.analysis." + f for f in FLAGS]
    cmd = ["tshark", "-n", "-r", pcap, "-Y", "tcp", "-T", "fields", "-E", "separator=/t"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        sys.exit(f"tshark could not read {pcap}: {out.stderr.strip()[:300]}")
    rows = []
    for line in out.stdout.splitlines():
        c = line.split("\t")
        if len(c) < len(fields) or not c[4]:
            continue
        rows.append({"n": int(c[0]), "t": float(c[1]), "sport": int(c[2]), "dport": int(c[3]),
                     "seq": int(c[4]), "ack": int(c[5] or 0), "len": int(c[6] or 0),
                     "flags": [f for f, v in zip(FLAGS, c[7:]) if v]})
    return rows


def covering(rows, port, seq, before=None, after=None):
    """Data packets from `port` whose bytes include `seq`, within the time bounds."""
    return [r for r in rows if r["sport"] == port and r["len"] > 0
            and seq_le(r["seq"], seq) and not seq_le((r["seq"] + r["len"]) % MOD, seq)
            and (before is None or r["t"] < before) and (after is None or r["t"] >= after)]


def first_ack(rows, port, end, after):
    """The first packet to `port` at or after `after` acknowledging `end`."""
    for r in rows:
        if r["dport"] == port and r["t"] >= after and seq_le(end, r["ack"]):
            return r
    return None


def excuse_probe(probe, srv, devices, port, paused, spliced, min_stall):
    """Why a server retransmission is a probe after a gateway stall, or None. `devices`: the
    old device's capture and the new device's."""
    if probe["flags"] != ["retransmission"] or probe["sport"] != port:
        return None
    originals = [r for r in covering(srv, port, probe["seq"], before=probe["t"]) if not r["flags"]]
    if not originals:
        return None
    orig = originals[-1]
    if orig["t"] < paused:
        name, device, since = "laptop", devices[0], f"{paused - orig['t']:.3f} s before the pause"
    elif orig["t"] >= spliced:
        name, device, since = "phone", devices[1], f"{orig['t'] - spliced:.3f} s after the splice"
    else:
        return None
    arrived = covering(device, port, probe["seq"], after=orig["t"])
    if not arrived or arrived[0]["flags"]:
        return None
    at_device = arrived[0]
    end = (probe["seq"] + probe["len"]) % MOD
    device_ack = first_ack(device, port, end, at_device["t"])
    server_ack = first_ack(srv, port, end, orig["t"]) if device_ack else None
    if device_ack is None or server_ack is None:
        return None
    outward = at_device["t"] - orig["t"]
    back = server_ack["t"] - device_ack["t"]
    if server_ack["t"] <= probe["t"] or max(outward, back) < min_stall:
        return None
    return (f"srv #{probe['n']}: a probe of seq {probe['seq']} {probe['t'] - orig['t']:.4f} s after the original "
            f"(#{orig['n']}, {since}); the gateway took {outward * 1000:.1f} ms to pass it to the {name} "
            f"and {back * 1000:.1f} ms to pass the {name}'s ACK back")


def phase_times(path, mid):
    """When the proxy paused and spliced migration `mid` (`tsmp events --json` lines)."""
    times = {}
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            ev = e.get("event", {})
            if ev.get("kind") == "migration-phase" and ev.get("migration") == mid:
                times.setdefault(ev.get("phase"), e.get("time"))
    return times.get("paused"), times.get("spliced")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--srv", required=True)
    ap.add_argument("--phone", required=True, help="the new device's capture")
    ap.add_argument("--laptop", required=True, help="the old device's capture")
    ap.add_argument("--port", type=int, required=True, help="the server's port")
    ap.add_argument("--from", dest="start", type=float, required=True)
    ap.add_argument("--to", dest="end", type=float, required=True)
    ap.add_argument("--events", required=True, help="the proxy's `tsmp events --json` lines")
    ap.add_argument("--migration", type=int, required=True)
    ap.add_argument("--min-stall", type=float, default=0.002)
    a = ap.parse_args()
    try:
        paused, spliced = phase_times(a.events, a.migration)
    except (OSError, ValueError) as e:
        print(f"cannot read {a.events}: {e}", file=sys.stderr)
        return 2
    if paused is None or spliced is None or not paused <= spliced <= a.end:
        print(f"{a.events}: migration {a.migration} paused at {paused}, spliced at {spliced}: not both, in order, "
              f"before --to {a.end}", file=sys.stderr)
        return 2
    srv, phone, laptop = read(a.srv), read(a.phone), read(a.laptop)
    summary, failures, excused = [], [], []
    excused_seqs = []
    window = {}
    for name, rows in (("srv", srv), ("phone", phone)):
        window[name] = [r for r in rows if a.start <= r["t"] <= a.end]
        if not window[name]:
            print(f"no packet of {name}'s capture in the migration's window", file=sys.stderr)
            return 1
        counts = {f: sum(f in r["flags"] for r in window[name]) for f in FLAGS}
        summary.append(f"{name} ({len(window[name])} packets): " + " ".join(f"{f}={counts[f]}" for f in FLAGS))
    for r in window["srv"]:
        if not r["flags"]:
            continue
        why = excuse_probe(r, srv, (laptop, phone), a.port, paused, spliced, a.min_stall)
        if why:
            excused.append(why)
            excused_seqs.append((r["seq"], r["t"]))
        else:
            failures.append(f"srv #{r['n']} at {r['t']:.6f}: {','.join(r['flags'])} seq {r['seq']} len {r['len']}")
    for r in window["phone"]:
        if not r["flags"]:
            continue
        forwarded_probe = (r["sport"] == a.port and set(r["flags"]) <= {"retransmission", "spurious_retransmission"}
                           and any(s == r["seq"] and 0 <= r["t"] - t < 0.05 for s, t in excused_seqs))
        if forwarded_probe:
            excused.append(f"phone #{r['n']}: the excused probe of seq {r['seq']}, forwarded")
        else:
            failures.append(f"phone #{r['n']} at {r['t']:.6f}: {','.join(r['flags'])} seq {r['seq']} len {r['len']}")
    print("; ".join(summary))
    for line in excused:
        print("excused: " + line)
    for line in failures:
        print("flagged: " + line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
