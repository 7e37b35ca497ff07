# common.gp: look shared by every moesim figure (loaded by the templates).
# Sixteen distinguishable colours (matplotlib's tab10 + six); point types vary
# too, so lines stay apart in grey-scale print.
array C[16] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", \
               "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", \
               "#e7969c", "#31a354", "#9c9ede", "#843c39"]
do for [i = 1:16] { set linetype i lc rgb C[i] lw 2 pt (i % 13) + 1 ps 1.0 }
# linetype 20 is reserved for the Belady ceiling (black), so no policy shares it
set linetype 20 lc rgb "#000000" lw 2 pt 7
set title title_text font ",13"
set grid xtics ytics mytics lc rgb "#dddddd" lw 1
set border 3
set tics nomirror
set key noenhanced
file(i) = sprintf("%s/%d.dat", datadir, i)
# the legend's title: moesim plot says there how the lines were chosen
if (!exists("key_title")) key_title = "policy"
