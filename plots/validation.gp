# validation.gp: the simulator against the real backend (`moesim validate`).
# Left: predicted vs measured decode tok/s, one point per validation, with
# y = x and the +-15% band. Right: time of each run, measured and
# predicted side by side for each validation (the whole run), split into dense compute,
# expert compute and stalls. `moesim plot validation`.
# Variables: datadir (1.dat: "meas_tok_s pred_tok_s label m_dense m_expert
# m_miss m_late p_dense p_expert p_miss p_late", ms), n, title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("validation.gp") - 1])
f = sprintf("%s/1.dat", datadir)
set multiplot layout 1,2 title title_text font ",13"
unset title
stats f using 1:2 nooutput
hi = (STATS_max_x > STATS_max_y ? STATS_max_x : STATS_max_y) * 1.1
set xrange [0:hi]
set yrange [0:hi]
set size ratio -1
set xlabel "measured decode tok/s"
set ylabel "predicted decode tok/s"
set key top left box noenhanced
plot x with lines lc rgb "black" lw 1.5 title "y = x", \
     1.15 * x with lines dt 2 lc rgb "#888888" lw 1 title "+-15%", \
     0.85 * x with lines dt 2 lc rgb "#888888" lw 1 notitle, \
     f using 1:2 with points pt 7 ps 1.1 lc rgb "#1f77b4" title "one validation"
set size noratio
set autoscale
set xrange [-0.8:n - 0.2]
set yrange [0:*]
set xlabel "policy/capacity/prefetcher (left bar measured, right bar predicted)"
set ylabel "ms in the whole run"
set xtics rotate by 90 right font ",8"
set bmargin 9
set style fill solid 0.85 border rgb "#444444"
set boxwidth 0.38
set key inside top right vertical noenhanced font ",8" opaque
plot f using ($0 - 0.2):($4 + $5 + $6 + $7):xtic(3) with boxes lc rgb "#ff7f0e" title "stall: late prefetch", \
     '' using ($0 - 0.2):($4 + $5 + $6) with boxes lc rgb "#d62728" title "stall: miss", \
     '' using ($0 - 0.2):($4 + $5) with boxes lc rgb "#2ca02c" title "expert compute", \
     '' using ($0 - 0.2):4 with boxes lc rgb "#1f77b4" title "dense compute", \
     '' using ($0 + 0.2):($8 + $9 + $10 + $11) with boxes lc rgb "#ff7f0e" fs pattern 4 notitle, \
     '' using ($0 + 0.2):($8 + $9 + $10) with boxes lc rgb "#d62728" fs pattern 4 notitle, \
     '' using ($0 + 0.2):($8 + $9) with boxes lc rgb "#2ca02c" fs pattern 4 notitle, \
     '' using ($0 + 0.2):8 with boxes lc rgb "#1f77b4" fs pattern 4 notitle
unset multiplot
