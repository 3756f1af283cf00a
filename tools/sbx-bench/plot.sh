#!/usr/bin/env bash
# plot.sh — draws an sbx-bench JSON report as an SVG chart (gnuplot): for every case, each
# variant's median as a multiple of the case's baseline, on a log scale.
#   sbx-bench --json > bench.json && tools/sbx-bench/plot.sh bench.json docs/performance.svg
set -euo pipefail
in=${1:?usage: plot.sh BENCH.json OUT.svg}
out=${2:?usage: plot.sh BENCH.json OUT.svg}
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
data=$(mktemp)
trap 'rm -f "$data"' EXIT
# One row per measured variant: "case/variant" ratio (the baseline itself is left out).
python3 - "$in" > "$data" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    r = c.get("ratio_to_baseline")
    if r is None or abs(r - 1.0) < 1e-9 and c["variant"] in ("fork+exec", "host", "tar -c", "tar -x"):
        continue
    print('"%s\\n%s" %s' % (c["name"], c["variant"], r))
PY
gnuplot <<GP
set terminal svg size 1400,560 dynamic font "sans,10"
set output "$out"
set title "sbx-bench: median time as a multiple of each case's baseline (lower is better)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set logscale y 10
set yrange [0.03:100]
set ylabel "× baseline (fork+exec, host I/O, or GNU tar)"
set xtics rotate by -50 scale 0 font ",8"
set grid ytics
unset key
plot "$data" using 2:xtic(1) linecolor rgb "#3a6ea5"
GP
echo "wrote $out"
