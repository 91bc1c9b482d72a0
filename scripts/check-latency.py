#!/usr/bin/env python3
"""check-latency.py ANALYZE.jsonl: recomputes the latency distributions of `hoptrace analyze
--format jsonl` from its chain lines with numpy and compares them with the summary line's
`latency` (HdrHistogram: 3 significant digits overall, 2 per route). Exit 0 when they agree, 1 with the differences.

Each complete chain gives its client's time (first hop: request start to response end); a chain
of two or more hops also the app's (last hop), the proxy's before and after the app, and their
sum. An encrypted HTTP/2 connection's chain (`tls.multiplexed`) is no request and gives nothing;
a plaintext copy alone whose client's copy is inside one (`otherCopyInEncryptedHTTP2` naming an
intercepted role, its one hop the proxy's copy to the app) gives the app's time only. Percentiles: the sample of rank ceil(p*n/100) (numpy's inverted_cdf), which HdrHistogram
rounds up within its precision; max exactly."""
import json
import re
import sys

import numpy as np

MEASURES = ["client", "app", "proxyBefore", "proxyAfter", "proxyAdded"]
PERCENTILES = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)]


def is_id(seg):
    if not seg:
        return False
    digits = sum(c.isdigit() for c in seg)
    if digits == len(seg):
        return True
    if digits == 0:
        return False
    if len(seg) == 36 and seg.count("-") == 4 and re.fullmatch(r"[0-9a-fA-F-]+", seg):
        return True
    return len(seg) >= 16 and re.fullmatch(r"[0-9A-Za-z_-]+", seg) is not None


def route(method, target):
    m = method if method is not None else "?"
    if target is None:
        return m + " ?"
    path = target.split("?", 1)[0]
    return m + " " + "/".join("{id}" if is_id(s) else s for s in path.split("/"))


def main(path):
    samples = {}  # route or "" -> measure -> values
    ambiguous = {}
    summary = None
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        if "summary" in d and len(d) == 1:
            summary = d["summary"]
            continue
        if "connection" in d and len(d) == 1:
            continue
        if not d.get("complete"):
            continue
        hops = d["hops"]
        if (hops[0].get("tls") or {}).get("multiplexed"):
            continue
        ds, de = hops[0]["requestStartNs"], hops[0]["responseEndNs"]
        if ds is None or de is None:
            continue
        if len(hops) == 1 and hops[0]["role"].endswith("-forwarded") and d.get("otherCopyInEncryptedHTTP2"):
            values = {"app": de - ds}
        else:
            values = {"client": de - ds}
        if len(hops) > 1 and hops[-1]["requestStartNs"] is not None and hops[-1]["responseEndNs"] is not None:
            us, ue = hops[-1]["requestStartNs"], hops[-1]["responseEndNs"]
            values.update(app=ue - us, proxyBefore=us - ds, proxyAfter=de - ue, proxyAdded=(de - ds) - (ue - us))
        amb = len(hops) > 1 and d["confidence"] < 0.9
        for key in ("", route(d["method"], d["target"])):
            for m, v in values.items():
                samples.setdefault(key, {}).setdefault(m, []).append(max(0, v))
                if amb:
                    ambiguous.setdefault(key, {}).setdefault(m, 0)
                    ambiguous[key][m] += 1
    if summary is None:
        print("no summary line")
        return 1
    lat = summary["latency"]
    groups = [("", lat["overall"])] + [(r["route"], r) for r in lat["routes"]]
    problems = []
    checked = 0
    for key, g in groups:
        if key == "(other routes)":
            continue
        for m in MEASURES:
            vals = np.array(samples.get(key, {}).get(m, []), dtype=np.int64)
            stated = g[m]
            if stated["count"] != len(vals):
                problems.append(f"{key or 'overall'} {m}: count {stated['count']}, numpy {len(vals)}")
                continue
            amb = ambiguous.get(key, {}).get(m, 0)
            if stated["ambiguous"] != amb:
                problems.append(f"{key or 'overall'} {m}: ambiguous {stated['ambiguous']}, recomputed {amb}")
            if len(vals) == 0:
                continue
            for name, p in PERCENTILES:
                exact = int(np.percentile(vals, p, method="inverted_cdf"))
                got = stated[name + "Ns"]
                # HdrHistogram rounds up within its bucket: overall 3 significant digits (at most
                # 1/1024 above: 2048 sub-buckets), per route 2 (1/128: 256 sub-buckets).
                slack = exact // (1024 if key == "" else 128) + 1
                if not (exact <= got <= exact + slack):
                    problems.append(f"{key or 'overall'} {m} {name}: {got}, numpy {exact}")
                checked += 1
            if stated["maxNs"] != int(vals.max()):
                problems.append(f"{key or 'overall'} {m} max: {stated['maxNs']}, numpy {int(vals.max())}")
            checked += 1
    for p in problems:
        print(p)
    print(f"{checked} percentiles checked in {len(groups)} groups, {len(problems)} differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
