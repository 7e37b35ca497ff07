# prefetch.gp: prefetch precision (solid) and recall (dashed) vs lookahead
# distance, one colour per prefetcher family (`moesim plot prefetch`).
# Variables: datadir (1.dat .. n.dat: "distance precision recall"),
# policies (family names), n, xlabel_text, title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("prefetch.gp") - 1])
set xlabel xlabel_text
set ylabel "fraction"
set yrange [0:1.0]
set ytics 0.1
set xtics 1
set offsets 0.25, 0.25, 0, 0
set key outside right top box noenhanced
plot for [i = 1:n] file(i) using 1:2 with linespoints lt i title word(policies, i) . " precision", \
     for [i = 1:n] file(i) using 1:3 with linespoints lt i dt 2 title word(policies, i) . " recall"
