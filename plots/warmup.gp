# warmup.gp: hit rate within consecutive windows of steps, one line per
# policy (`moesim plot warmup`). Variables: datadir (1.dat .. n.dat: "step
# hit_rate"; starts.dat: one sequence start per line, the first left out;
# marks.dat: "step \"label\"" per --mark), policies, n, ceiling (index of
# Belady's file, 0 = none; it is the last), n_starts, n_marks, xlabel_text,
# key_title, title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("warmup.gp") - 1])
set xlabel xlabel_text
set ylabel "hit rate in the window"
set yrange [0:1.0]
set ytics 0.1
set mytics 2
set key inside right bottom box opaque title key_title noenhanced maxrows 7
last = ceiling > 0 ? n - 1 : n
# The plot command is put together from the parts there are (gnuplot
# opens every file named in a plot, even in an empty iteration).
# Sequence starts: dotted lines (left out when so many they would hide the
# curves); --mark steps: grey lines labelled at the top.
cmd = "plot "
if (n_starts > 0 && n_starts <= 100) {
    cmd = cmd . sprintf("'%s/starts.dat' using 1:(0):(0):(1) with vectors nohead lc rgb '#999999' dt 3 title 'sequence start', ", datadir)
}
if (n_marks > 0) {
    cmd = cmd . sprintf("'%s/marks.dat' using 1:(0):(0):(1) with vectors nohead lc rgb '#555555' lw 1.5 dt 4 notitle, ", datadir)
    cmd = cmd . sprintf("'%s/marks.dat' using 1:(0.985):2 with labels left offset char 0.4,0 tc rgb '#333333' notitle, ", datadir)
}
cmd = cmd . "for [i = 1:last] file(i) using 1:2 with lines lt i title word(policies, i)"
if (ceiling > 0) {
    cmd = cmd . ", file(ceiling) using 1:2 with lines lt 20 lw 3 dt 2 title word(policies, ceiling) . ' (offline optimum)'"
}
eval cmd
