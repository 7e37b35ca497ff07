# hit_rate.gp: hit rate vs cache capacity, one line per policy, Belady's
# offline optimum as the ceiling (thick dashed black). `moesim plot hit-rate`
# sets: datadir (files 1.dat .. n.dat: "capacity hit_rate", with ci=1
# "capacity hit_rate lo hi": a 95% bootstrap interval drawn as error bars,
# ci_text its caption), policies (names, space-separated, in file order), n,
# ceiling (index of Belady's file, 0 = none), xmax, xlabel_text, key_title,
# title_text; the terminal and output come first.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("hit_rate.gp") - 1])
set xlabel xlabel_text
set ylabel "hit rate (unique expert activations served from cache)"
set yrange [0:1.0]
set ytics 0.1
set mytics 2
if (xmax <= 16) { set xrange [0.5:xmax + 0.5]; set xtics 1 } else { set xrange [0:xmax * 1.02]; set xtics auto }
set key inside right bottom box opaque title key_title noenhanced spacing 1.1
last = ceiling > 0 ? n - 1 : n   # `moesim plot` puts Belady's file last
if (!exists("ci")) ci = 0
if (ci) {
    set errorbars small
    set label 1 ci_text at graph 0.02, graph 0.97 left font ",9" noenhanced
    if (ceiling > 0) {
        plot for [i = 1:last] file(i) using 1:2:3:4 with yerrorlines lt i title word(policies, i), \
             file(ceiling) using 1:2:3:4 with yerrorlines lt 20 lw 3.5 dt 2 \
                 title word(policies, ceiling) . " (offline optimum)"
    } else {
        plot for [i = 1:n] file(i) using 1:2:3:4 with yerrorlines lt i title word(policies, i)
    }
} else {
if (ceiling > 0) {
    plot for [i = 1:last] file(i) using 1:2 with linespoints lt i title word(policies, i), \
         file(ceiling) using 1:2 with lines lt 20 lw 3.5 dt 2 \
             title word(policies, ceiling) . " (offline optimum)"
} else {
    plot for [i = 1:n] file(i) using 1:2 with linespoints lt i title word(policies, i)
}
}
