# warmup.gp: hit rate within consecutive windows of steps, one line per
# policy (`moesim plot warmup`). Variables: datadir (1.dat .. n.dat: "step
# hit_rate"), policies, n, ceiling (index of Belady's file, 0 = none; it is
# the last), xlabel_text, title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("warmup.gp") - 1])
set xlabel xlabel_text
set ylabel "hit rate in the window"
set yrange [0:1.0]
set ytics 0.1
set mytics 2
set key inside right bottom box opaque title "policy" noenhanced maxrows 7
last = ceiling > 0 ? n - 1 : n
if (ceiling > 0) {
    plot for [i = 1:last] file(i) using 1:2 with lines lt i title word(policies, i), \
         file(ceiling) using 1:2 with lines lt 20 lw 3 dt 2 title word(policies, ceiling) . " (offline optimum)"
} else {
    plot for [i = 1:n] file(i) using 1:2 with lines lt i title word(policies, i)
}
