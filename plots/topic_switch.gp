# topic_switch.gp: warm-up curves of the warm and the cold-per-sequence run
# of each policy, with every sequence start marked (`moesim plot
# topic-switch`). Variables: datadir (1.dat .. n.dat, starts.dat: one step per
# line), policies, n, n_starts, xmax, xlabel_text, title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("topic_switch.gp") - 1])
set xlabel xlabel_text
set ylabel "hit rate in the window"
set yrange [0:1.0]
set ytics 0.1
set xrange [0:xmax]
set key outside right top box title "policy (cache mode)" noenhanced
plot sprintf("%s/starts.dat", datadir) using 1:(0):(0):(1) with vectors nohead lc rgb "#bbbbbb" dt 3 \
         title "sequence start", \
     for [i = 1:n] file(i) using 1:2 with linespoints lt ((i + 1) / 2) dt (i % 2 ? 1 : 2) pt 7 ps 0.5 \
         title word(policies, i)
