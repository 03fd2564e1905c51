#!/usr/bin/env python3
"""Prints a markdown table of the last fuzz runs from fuzz/logs/TARGET.log:
executions, seconds, edges covered, features, corpus, and the outcome."""
import pathlib, re, sys

logs = pathlib.Path(__file__).parent / "logs"
targets = sys.argv[1:] or sorted(p.stem for p in logs.glob("*.log") if "." not in p.stem and p.stem != "pth_smoke")
print("| target | executions | exec/s | edges (cov) | features | corpus | result |")
print("|---|---|---|---|---|---|---|")
for t in targets:
    text = (logs / f"{t}.log").read_text(errors="replace")
    execs = re.search(r"stat::number_of_executed_units: (\d+)", text)
    rate = re.search(r"stat::average_exec_per_sec:\s+(\d+)", text)
    last = [l for l in text.splitlines() if re.match(r"#\d+\s+(DONE|NEW|REDUCE|pulse)", l)]
    m = re.search(r"cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", last[-1]) if last else None
    bad = re.search(r"ERROR: libFuzzer: (.*)|panicked at", text)
    result = "crash: " + (bad.group(1) or "panic") if bad else "clean"
    print(f"| `{t}` | {execs.group(1) if execs else '?'} | {rate.group(1) if rate else '?'} | "
          f"{m.group(1) if m else '?'} | {m.group(2) if m else '?'} | {m.group(3) + ' inputs' if m else '?'} | {result} |")
