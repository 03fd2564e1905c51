"""Scores reliability gates on the data bench/gate_calibration.sh wrote.
Usage: gate_table.py GATEDIR NAME...

A pose is *good* within 10 cm / 10 deg of the truth and *wrong* beyond
0.5 m or 15 deg (sld eval's WRONG_M / WRONG_DEG); on noise images and on
another room's images every pose is wrong. For each gate: the share of good
poses it keeps, of wrong poses it lets through, and of noise / other-room
images given a pose. Means over the rooms, with the min-max spread."""
import glob
import json
import statistics as st
import sys

d, names = sys.argv[1], sys.argv[2:]


def rows_eval(path, all_wrong):
    r = json.load(open(path))
    out = []
    for im in r["per_image"]:
        q = im.get("quality")
        if q is None:
            continue
        p, a = im.get("position_m"), im.get("rotation_deg")
        if p is None:
            continue
        good = (not all_wrong) and p < 0.10 and a < 10.0
        wrong = all_wrong or p > 0.5 or a > 15.0
        out.append((q, good, wrong))
    return out, len(r["per_image"])


def rows_noise(path):
    out, n = [], 0
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        n += 1
        j = json.loads(line)
        q = j.get("quality")
        if q:
            out.append((q, False, True))
    return out, n


def passes(g, q):
    mi, ratio, vis, conf = g
    return (q["inliers"] >= mi and q["inlier_ratio"] >= ratio
            and q["visible_fraction"] >= vis and q["inlier_confidence"] >= conf)


data = {}  # name -> room -> split -> (rows, images)
for name in names:
    for f in sorted(glob.glob(f"{d}/{name}/room*.val.json")):
        room = f.split("/")[-1].split(".")[0]
        e = data.setdefault(name, {}).setdefault(room, {})
        e["val"] = rows_eval(f, False)
        e["test"] = rows_eval(f.replace(".val.", ".test."), False)
        e["other"] = rows_eval(f.replace(".val.", ".other."), True)
        e["noise"] = rows_noise(f.replace(".val.json", ".noise.jsonl"))


def score(g, name):
    """Per room: kept good / all good, wrong kept / images, noise and
    other-room images given a pose."""
    per = []
    for room, e in data[name].items():
        good = [r for s in ("val", "test") for r in e[s][0] if r[1]]
        wrong_kept = sum(1 for s in ("val", "test") for r in e[s][0] if r[2] and passes(g, r[0]))
        imgs = e["val"][1] + e["test"][1]
        recall = sum(1 for s in ("val", "test") for r in e[s][0] if r[1] and passes(g, r[0])) / imgs
        per.append({
            "good_kept": sum(passes(g, r[0]) for r in good) / max(1, len(good)),
            "recall10": recall,
            "wrong": wrong_kept / imgs,
            "noise": sum(passes(g, r[0]) for r in e["noise"][0]) / max(1, e["noise"][1]),
            "other": sum(passes(g, r[0]) for r in e["other"][0]) / max(1, e["other"][1]),
        })
    return {k: [p[k] for p in per] for k in per[0]} if per else {}


def fmt(v):
    return f"{100 * st.mean(v):5.1f} ({100 * min(v):.1f}-{100 * max(v):.1f})"


gates = [(mi, ratio, vis, conf) for mi in (0, 5, 6, 7, 8, 10, 12) for ratio in (0.0, 0.2, 0.3, 0.35, 0.4, 0.5)
         for vis in (0.0, 0.05, 0.1, 0.15, 0.2) for conf in (0.0,)]
if "--search" in sys.argv[1:]:
    names = [n for n in names if n != "--search"]
# Off, each threshold alone, and the default (sld-core's Gate::default()).
show = [(0, 0.0, 0.0, 0.0), (10, 0.0, 0.0, 0.0), (0, 0.5, 0.0, 0.0), (0, 0.0, 0.15, 0.0), (10, 0.5, 0.15, 0.0)]
for name in names:
    if name not in data:
        continue
    # The best gates: noise and other-room acceptance below 1 %, then the
    # most good poses kept.
    ranked = []
    for g in gates:
        s = score(g, name)
        if max(s["noise"]) < 0.01:
            ranked.append((st.mean(s["good_kept"]) - 2 * st.mean(s["wrong"]), g))
    ranked.sort(reverse=True)
    print(f"\n## {name} ({len(data[name])} rooms)\n")
    print("| gate: min inliers, ratio, visible fraction | good poses kept % | recall 10cm (val+query) % | wrong poses returned % of images | noise images given a pose % | other-room images given a pose % |")
    print("|---|---|---|---|---|---|")
    for g in show + [g for _, g in ranked[:4] if g not in show]:
        s = score(g, name)
        label = "off" if g == (0, 0.0, 0.0, 0.0) else f"{g[0]}, {g[1]}, {g[2]}"
        print(f"| {label} | {fmt(s['good_kept'])} | {fmt(s['recall10'])} | {fmt(s['wrong'])} | {fmt(s['noise'])} | {fmt(s['other'])} |")
