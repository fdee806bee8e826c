#!/usr/bin/env bash
# Draws docs/latency.png from the samples kvevents-bench writes with --samples FILE:
#   build/release/bench/kvevents-bench --samples /tmp/latency.txt && bench/plot_latency.sh /tmp/latency.txt
# Needs gnuplot (Debian: gnuplot-nox). One line per receiver and rate: latency against percentile.
set -euo pipefail
samples=${1:?usage: plot_latency.sh SAMPLES [OUT.png]}
out=${2:-docs/latency.png}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
plots=()
for receiver in client raw; do
    for rate in 1000 10000 50000; do
        file="$work/$receiver-$rate.dat"
        # Each sorted sample at x = -log10(1 - p): 1 is p90, 2 is p99, 3 is p99.9, so the tail
        # gets as much room as the median. Thinned to ~3000 points per curve.
        awk -v r="$receiver" -v q="$rate" '$1 == r && $2 == q { print $3 }' "$samples" |
            sort -g |
            awk '{ v[NR] = $1 } END { step = NR > 3000 ? int(NR / 3000) : 1;
                   for (i = 1; i < NR; i += step) printf "%g %g\n", -log(1 - i / NR) / log(10), v[i] }' \
                > "$file"
        style=$([ "$receiver" = client ] && echo "lw 2" || echo "lw 1 dt 2")
        plots+=("'$file' using 1:2 with lines $style title '$receiver @ $rate/s'")
    done
done
gnuplot <<GP
set terminal pngcairo size 1000,600 font "DejaVu Sans,11"
set output "$out"
set title "Publish-to-handler latency on loopback TCP: ZmqClient vs bare libzmq SUB loop"
set xlabel "percentile"
set xtics ("p0" 0, "p50" 0.30103, "p90" 1, "p99" 2, "p99.9" 3, "p99.99" 4)
set ylabel "latency (us, log scale)"
set logscale y
set yrange [10:10000]
set xrange [0:4]
set grid
set key top left
plot $(IFS=,; echo "${plots[*]}")
GP
echo "wrote $out"
