# time_breakdown.gp: stacked bars of simulated time per token (dense compute,
# expert compute, stall on misses, stall on late prefetches) per
# configuration, with the I/O channel's busy time as a diamond (I/O overlaps
# compute, so it is not a slice of the bar). `moesim plot time-breakdown`.
# Variables: datadir (time.dat: "label dense expert stall_miss stall_late io"
# in ms per token), xlabel_text, title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("time_breakdown.gp") - 1])
set xlabel xlabel_text
set ylabel "simulated time per token (ms)"
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border rgb "#444444"
set boxwidth 0.7
set yrange [0:*]
set xtics rotate by -30 left
set key outside right top box noenhanced
f = sprintf("%s/time.dat", datadir)
plot f using 2:xtic(1) title "dense compute (attention, router)" lc rgb "#1f77b4", \
     '' using 3 title "expert compute" lc rgb "#2ca02c", \
     '' using 4 title "stall: demand misses" lc rgb "#d62728", \
     '' using 5 title "stall: late prefetches" lc rgb "#ff7f0e", \
     '' using 0:6 with points pt 13 ps 2 lc rgb "black" title "I/O busy time (overlaps)"
