# topic_switch.gp: warm-up curves of the warm and the cold-per-sequence run
# of each policy, with every sequence start marked (`moesim plot
# topic-switch`). Variables: datadir (1.dat .. n.dat, starts.dat: one step per
# line), policies, n, n_starts, xmax, xlabel_text, title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("topic_switch.gp") - 1])
set xlabel xlabel_text
set ylabel "hit rate in the window"
set yrange [*:*]
set ytics auto
set xrange [0:xmax]
set key inside right bottom box opaque title "policy (cache mode)" noenhanced
# files come in pairs per policy: odd = warm (solid), even = cold per sequence (dashed)
plot sprintf("%s/starts.dat", datadir) using 1:(0):(0):(1) with vectors nohead lc rgb "#999999" dt 3 \
         title "sequence start", \
     for [i = 1:n:2] file(i) using 1:2 with linespoints lt ((i + 1) / 2) pt 7 ps 0.6 title word(policies, i), \
     for [i = 2:n:2] file(i) using 1:2 with linespoints lt (i / 2) dt 2 pt 6 ps 0.6 title word(policies, i)
