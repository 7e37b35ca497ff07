# quality.gp: speed against quality (`moesim plot quality`). One point per
# configuration of `moesim quality` runs: x = measured decode tok/s, y =
# the loss in nats per byte against the full model (log scale, floored at
# 1e-4); the frontier (no other point is both faster and better) joined.
# Variables: datadir (1.dat: "tok_s delta label"; 2.dat: the frontier
# "tok_s delta", ascending tok/s), n, title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("quality.gp") - 1])
f = sprintf("%s/1.dat", datadir)
g = sprintf("%s/2.dat", datadir)
set title title_text font ",13"
set logscale y
set format y "%g"
set xlabel "measured decode tok/s (mean over the texts)"
set ylabel "quality loss: delta nats per byte vs the full model (mean; floor 1e-4)"
set key top left box noenhanced
set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05
plot g using 1:2 with linespoints lw 2 lc rgb "#d62728" pt 6 ps 1.8 title "frontier", \
     f using 1:2 with points pt 7 ps 1.0 lc rgb "#1f77b4" title "one configuration", \
     f using 1:2:3 with labels font ",6" offset char 0.5,0.5 left tc rgb "#555555" notitle
