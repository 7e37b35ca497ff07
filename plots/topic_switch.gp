# topic_switch.gp: recovery after a sequence start (`moesim plot
# topic-switch`): hit rate by steps since the start, pooled over every start
# but the first, for the warm (solid) and the cold-per-sequence (dashed) run
# of each policy. Variables: datadir (1.dat .. n.dat: "steps hit_rate mode",
# in pairs per policy: odd = warm, even = cold), policies, n, ceiling (the
# pair index of Belady, drawn black; 0 = none), xlabel_text, key_title,
# title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("topic_switch.gp") - 1])
set xlabel xlabel_text
set ylabel "hit rate at that step after the start"
set yrange [0:1.0]
set ytics 0.1
set mytics 2
set xrange [-0.5:*]
set key inside right bottom box opaque title key_title noenhanced
lt_of(pair) = pair == ceiling ? 20 : pair
plot for [i = 1:n:2] file(i) using 1:2 with linespoints lt lt_of((i + 1) / 2) pt 7 ps 0.6 title word(policies, i), \
     for [i = 2:n:2] file(i) using 1:2 with linespoints lt lt_of(i / 2) dt 2 pt 6 ps 0.6 title word(policies, i)
