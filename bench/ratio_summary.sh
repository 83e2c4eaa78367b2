# Sourced by the bench scripts: the statistic their reports give for gateway/peer ratios.
#
# Ratios on stdin, one per line ("n/a" or empty lines are skipped) -> "median low high below
# count": their median, a 95 % bootstrap interval of the median (2000 resamples, fixed seed so a
# report can be recomputed), how many are below 1, and how many there are.
ratio_summary() {
  awk 'function median(a, n,   i, j, t) {
         for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
         return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
       }
       $1 != "n/a" && $1 != "" { x[++n] = $1; if ($1 < 1) below++ }
       END {
         if (n == 0) { print "n/a n/a n/a 0 0"; exit }
         for (i = 1; i <= n; i++) c[i] = x[i]
         m = median(c, n)
         srand(1)
         for (b = 1; b <= 2000; b++) {
           for (i = 1; i <= n; i++) c[i] = x[int(rand() * n) + 1]
           boot[b] = median(c, n)
         }
         median(boot, 2000)
         printf "%.2f %.2f %.2f %d %d\n", m, boot[50], boot[1951], below, n
       }'
}
