#!/usr/bin/env bash
# Draws docs/fleet.png from the JSON line kvevents-fleet-bench prints:
#   build/release/bench/kvevents-fleet-bench --output /tmp/fleet.json && bench/plot_fleet.sh /tmp/fleet.json
# Needs gnuplot (Debian: gnuplot-nox) and python3. Four panels at each N, the fleet (its own ZMTP
# reader), the fleet through libzmq SUB sockets and one client per publisher: threads, RSS, busy
# CPU, p99 delivery delay.
set -euo pipefail
results=${1:?usage: plot_fleet.sh RESULTS.json [OUT.png]}
out=${2:-docs/fleet.png}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$results" "$work/runs.dat" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
by_n = {}
for r in runs:
    by_n.setdefault(r["n"], {})[r["design"]] = r
with open(sys.argv[2], "w") as out:
    for n in sorted(by_n):
        designs = [by_n[n].get(d) for d in ("fleet", "fleet-libzmq", "client-per-publisher")]
        if not all(designs):
            continue
        row = [n]
        for field in ("threads", "rss_mib", "busy_cpu_pct", "delay_p99_ms"):
            row += [d[field] for d in designs]
        out.write(" ".join("%g" % v for v in row) + "\n")
PY
gnuplot <<GP
set terminal pngcairo size 1100,800 font "sans,10"
set output "$out"
set multiplot layout 2,2 title "Following N publishers at 20 batches/s of 8 events (2 cores)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
set grid ytics
set xlabel "publishers"
set title "threads (log)"
set logscale y
plot "$work/runs.dat" using 2:xtic(1) title "Fleet", "" using 3 title "Fleet via libzmq", "" using 4 title "ZmqClient each"
set title "RSS, MiB"
unset logscale y
plot "$work/runs.dat" using 5:xtic(1) title "Fleet", "" using 6 title "Fleet via libzmq", "" using 7 title "ZmqClient each"
set title "busy CPU, % of one core"
plot "$work/runs.dat" using 8:xtic(1) title "Fleet", "" using 9 title "Fleet via libzmq", "" using 10 title "ZmqClient each"
set title "delivery delay p99, ms"
plot "$work/runs.dat" using 11:xtic(1) title "Fleet", "" using 12 title "Fleet via libzmq", "" using 13 title "ZmqClient each"
unset multiplot
GP
echo "wrote $out"
