# time_breakdown.gp: stacked bars of simulated time per token (dense compute,
# expert compute, stall on misses, stall on late prefetches), one per run,
# labelled by policy and grouped by the rest of the configuration, with the
# I/O channel's busy time as a diamond (I/O overlaps compute, so it is not a
# slice of the bar). `moesim plot time-breakdown`.
# Variables: datadir (time.dat: "x \"policy\" \"group\" dense expert
# stall_miss stall_late io" in ms per token), group_labels (gnuplot `set
# label` commands naming each group under its bars), group_lines (the most
# text lines of a group name; 0: one group), xlabel_text, title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("time_breakdown.gp") - 1])
set ylabel "simulated time per token (ms)"
set style fill solid 0.85 border rgb "#444444"
set boxwidth 0.8
set yrange [0:*]
set offsets 0.6, 0.6, 0, 0
set xtics scale 0 nomirror
set grid noxtics
# the key in a row under the plot, so the bars get the whole width
set key below horizontal noenhanced
# group names under the policy names, in lines the x label leaves empty
# above itself (so gnuplot makes room for them and puts the key below)
eval group_labels
pad = ""
do for [i = 1:group_lines] { pad = pad . "\n" }
set xlabel pad . xlabel_text
f = sprintf("%s/time.dat", datadir)
plot f using 1:($4 + $5 + $6 + $7):xtic(2) with boxes lc rgb '#ff7f0e' title 'stall: late prefetches', \
     '' using 1:($4 + $5 + $6) with boxes lc rgb '#d62728' title 'stall: demand misses', \
     '' using 1:($4 + $5) with boxes lc rgb '#2ca02c' title 'expert compute', \
     '' using 1:4 with boxes lc rgb '#1f77b4' title 'dense compute (attention, router)', \
     '' using 1:8 with points pt 13 ps 1.8 lc rgb 'black' title 'I/O busy time (overlaps)'
