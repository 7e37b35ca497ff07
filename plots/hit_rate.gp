# hit_rate.gp: hit rate vs cache capacity, one line per policy, with Belady's
# offline optimum drawn as the ceiling (thick dashed black line).
#
# Variables, set with gnuplot -e:
#   datadir     folder holding one "<policy>.dat" per policy: "capacity hit_rate" lines
#   policies    space-separated policy names to draw as ordinary lines
#   ceiling     name of the ceiling policy's file ("" for none), e.g. "belady"
#   out         output PNG path
#   title_text  plot title (names the trace)
#   xlabel_text x-axis label
# Example: experiments/demo.sh, which pulls the data from SQLite.

set terminal pngcairo size 1200,720 noenhanced font "DejaVu Sans,11"
set output out
set title title_text font "DejaVu Sans,13"
set xlabel xlabel_text
set ylabel "hit rate (unique expert activations served from cache)"
set yrange [0:1.02]
set ytics 0.1
set mytics 2
set xtics 1
set grid xtics ytics mytics lc rgb "#dddddd"
set key inside right bottom box opaque title "policy" width 1
set border 3
set tics nomirror

# Twelve distinguishable colours; point types vary too, for grey-scale print.
array C[12] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", \
               "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"]
do for [i = 1:12] { set linetype i lc rgb C[i] lw 1.6 pt (i % 13) + 1 ps 0.8 }

file(p) = sprintf("%s/%s.dat", datadir, p)
if (strlen(ceiling) > 0) {
    plot for [i = 1:words(policies)] file(word(policies, i)) using 1:2 with linespoints lt i \
             title word(policies, i), \
         file(ceiling) using 1:2 with lines lw 4 dt 2 lc rgb "black" \
             title sprintf("%s (ceiling: offline optimum)", ceiling)
} else {
    plot for [i = 1:words(policies)] file(word(policies, i)) using 1:2 with linespoints lt i \
             title word(policies, i)
}
