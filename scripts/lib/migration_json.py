#!/usr/bin/env python3
"""Reads `tsmp flows --json` and `tsmp migrate --json --wait` output for the shell scripts.

    migration_json.py flows FLOWS.json --device ADDR [--device-port P] [--dport PORT]
        one line per established flow from that device: "ID DEVICE_PORT NAT_PORT"
    migration_json.py phase FLOWS.json [ID]
        the flow's migration phase ("-" when it is not migrating); exit 1 if there is no flow ID;
        without ID: "ID PHASE" for every flow
    migration_json.py inkernel FLOWS.json ID
        "yes" when the kernel forwards flow ID (--kernel-path), "no" otherwise; exit 1 if there is no flow ID
    migration_json.py field REPORT.json FIELD [--flow ID]
        a field of a flow's report (the first report without --flow); "-" when null
        (dotted for nested fields: newDevice.port)
    migration_json.py phases REPORT.json [--flow ID]
        "PHASE SECONDS" per line
    migration_json.py summary REPORT.json
        readable lines: each report's outcome, phase times, cut offsets, cached bytes; refusals
    migration_json.py pairs REPORT.json
        one line per report: "FLOW PHASE OLD_DEVICE_PORT NEW_DEVICE_PORT CUT_TO_DEVICE"
    migration_json.py tcpinfo SS.txt
        from `ss -tinH` output: "PEER_PORT SSTHRESH CWND RETRANS" per socket, SSTHRESH "absent"
        while the connection is in slow start (the kernel does not print it then)
"""
import argparse
import json
import re
import sys


def load(path):
    with open(path) as source:
        return json.load(source)


def report_of(data, flow):
    reports = data.get("reports", [])
    if flow is None:
        return reports[0] if reports else None
    for report in reports:
        if report.get("flow") == flow:
            return report
    return None


def dig(obj, dotted):
    for key in dotted.split("."):
        if not isinstance(obj, dict) or obj.get(key) is None:
            return "-"
        obj = obj[key]
    return obj


def endpoint(value):
    if isinstance(value, dict):
        address = str(value.get('address'))
        if ":" in address:  # IPv6: brackets before the port, as tsmp writes it
            address = f"[{address}]"
        return f"{address}:{value.get('port')}"
    return "-"


def tcpinfo(path):
    """`ss -tinH`: a line per socket (state, queues, addresses) then its indented details."""
    with open(path) as source:
        text = source.read()
    peer = None
    for raw in text.splitlines():
        if not raw.strip():
            continue
        if not raw[0].isspace():
            # With a state filter ss leaves out the State column: the peer is the last address.
            addresses = [f for f in raw.split() if re.search(r":\d+$", f)]
            peer = addresses[-1].rpartition(":")[2] if addresses else "?"
            continue
        if peer is None:
            continue
        found = {}
        for key in ("ssthresh", "cwnd"):
            match = re.search(r"(?:^|\s)" + key + r":(\d+)", raw)
            found[key] = match.group(1) if match else "absent"
        match = re.search(r"(?:^|\s)retrans:\d+/(\d+)", raw)
        found["retrans"] = match.group(1) if match else "0"
        print(peer, found["ssthresh"], found["cwnd"], found["retrans"])
        peer = None
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["flows", "phase", "inkernel", "field", "phases", "summary", "pairs", "tcpinfo"])
    parser.add_argument("file")
    parser.add_argument("arg", nargs="?")
    parser.add_argument("--device")
    parser.add_argument("--device-port", type=int)
    parser.add_argument("--dport", type=int)
    parser.add_argument("--flow", type=int)
    args = parser.parse_args()
    if args.command == "tcpinfo":
        return tcpinfo(args.file)
    data = load(args.file)

    if args.command == "flows":
        for flow in data.get("flows", []):
            if flow.get("state") != "established":
                continue
            if args.device and flow["device"]["address"] != args.device:
                continue
            if args.device_port and flow["device"]["port"] != args.device_port:
                continue
            if args.dport and flow["original"]["port"] != args.dport:
                continue
            print(flow["id"], flow["device"]["port"], flow["nat"]["port"])
        return 0
    if args.command == "phase":
        if args.arg is None:
            for flow in data.get("flows", []):
                print(flow["id"], flow.get("migrationPhase") or "-")
            return 0
        for flow in data.get("flows", []):
            if str(flow.get("id")) == args.arg:
                print(flow.get("migrationPhase") or "-")
                return 0
        return 1
    if args.command == "inkernel":
        for flow in data.get("flows", []):
            if str(flow.get("id")) == args.arg:
                print("yes" if flow.get("inKernel") else "no")
                return 0
        return 1
    if args.command == "field":
        report = report_of(data, args.flow)
        print("-" if report is None else dig(report, args.arg))
        return 0
    if args.command == "phases":
        report = report_of(data, args.flow) or {}
        for item in report.get("phases", []):
            print(item["phase"], f"{item['seconds']:.6f}")
        return 0
    if args.command == "pairs":
        for report in data.get("reports", []):
            print(report["flow"], report["phase"], dig(report, "oldDevice.port"), dig(report, "newDevice.port"),
                  dig(report, "cutOffsetToDevice"))
        return 0
    # summary
    for started in data.get("started", []):
        if started.get("error"):
            print(f"flow {started['flow']}: refused: {started['error']}")
    for report in data.get("reports", []):
        new = endpoint(report.get("newDevice")) if report.get("newDevice") else dig(report, "target.address")
        print(f"flow {report['flow']}: migration {report['id']} {report['phase']} "
              f"({endpoint(report.get('oldDevice'))} -> {new})")
        if report.get("reason"):
            print(f"  reason: {report['reason']}")
        for item in report.get("phases", []):
            print(f"  {item['seconds']:8.3f} s  {item['phase']}")
        print(f"  cut offsets: to-device {dig(report, 'cutOffsetToDevice')} bytes, "
              f"to-server {dig(report, 'cutOffsetToServer')} bytes")
        print(f"  cached bytes delivered by the proxy: {report.get('bytesCached')}, "
              f"retransmissions {report.get('retransmissions')}, timeouts {report.get('timeouts')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
