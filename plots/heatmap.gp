# heatmap.gp: a matrix of values drawn as coloured cells (`moesim plot
# layer-heatmap`, `popularity`). Variables: datadir (heat.dat: "column row
# value"), n_layers (columns), n_rows, ytics_text (gnuplot tic list "\"a\" 0,
# ..." or "" for numbers), xlabel_text, ylabel_text, cblabel_text, cbmin,
# cbmax, title_text.
load sprintf("%s/common.gp", ARG0[1:strlen(ARG0) - strlen("heatmap.gp") - 1])
set xlabel xlabel_text
set ylabel ylabel_text
set cblabel cblabel_text
set cbrange [cbmin:cbmax]
set xrange [-0.5:n_layers - 0.5]
set yrange [-0.5:n_rows - 0.5]
set grid noxtics noytics nomytics
if (n_layers <= 64) { set xtics 0, (n_layers > 16 ? 2 : 1) } else { set xtics auto }
if (strlen(ytics_text) > 0) { eval sprintf("set ytics (%s)", ytics_text) } else { set ytics 0, (n_rows > 16 ? 2 : 1) }
set palette defined (0 "#fff7ec", 0.25 "#fdd49e", 0.5 "#fc8d59", 0.75 "#d7301f", 1 "#7f0000")
set tics out
plot sprintf("%s/heat.dat", datadir) using 1:2:3 with image notitle
