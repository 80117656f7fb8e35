# The median round of each tool and workload, for the benches' reports.
# Input: one row per round, "tool|workload|seconds|c4|c5|c6" (seconds "failed" for a failed
# round, which sorts last); -v fmt=... prints tool, workload, the median round's seconds and
# c4..c6, then the fastest and the slowest round ("-" with one round or a failed one).
# Used as: printf '%s\n' "${ROWS[@]}" | awk -F'|' -v fmt="$fmt" -f benches/median.awk
{
    key = $1 "|" $2; if (!(key in n)) order[++k] = key; n[key]++; row[key, n[key]] = $0
    secs[key, n[key]] = ($3 == "failed" ? 1e9 : $3)
}
END {
    for (i = 1; i <= k; i++) {
        key = order[i]; m = n[key]
        for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++)
            if (secs[key, b] < secs[key, a]) {
                t = secs[key, a]; secs[key, a] = secs[key, b]; secs[key, b] = t
                t = row[key, a]; row[key, a] = row[key, b]; row[key, b] = t
            }
        split(row[key, int((m + 1) / 2)], f, "|")
        # how far apart rounds of the same tool were
        spread = (m > 1 && secs[key, m] < 1e9) ? sprintf("%.2f-%.2f", secs[key, 1], secs[key, m]) : "-"
        printf fmt, f[1], f[2], f[3], f[4], f[5], f[6], spread
    }
}
