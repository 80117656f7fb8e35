# Issue 8's goals, checked against a report's median rows: s3share beside the best peer (any
# tool but s3share's own rows and the "limit" rows) and beside "limit: 1 curl", and its peak RSS;
# uploads also beside "limit: 2 curl parts" (the server's multipart limit, for information).
# Input: "tool|workload|seconds|MiB/s|RSS MiB|..." (median.awk's rows, "|"-separated).
# Used as: ... | awk -F'|' -f benches/goals.awk
{
    w = $2; if ($3 == "failed") next
    if ($1 == "s3share") { mine[w] = $4; rss[w] = $5 }
    else if ($1 == "limit: 1 curl") limit[w] = $4
    else if ($1 == "limit: 2 curl parts") parts[w] = $4
    else if ($1 !~ /^limit/ && $1 !~ /^s3share/ && $1 !~ /rerun/ && $4 > best[w]) { best[w] = $4; who[w] = $1 }
    if (!(w in seen)) { seen[w] = 1; order[++k] = w }
}
function verdict(x, goal) { return sprintf("%.2fx (goal %.2fx: %s)", x, goal, x >= goal ? "met" : "NOT met") }
END {
    for (i = 1; i <= k; i++) {
        w = order[i]
        if (!(w in mine) || !(w in best)) continue
        peer_goal = (w ~ /256 KiB/) ? 1.5 : 1.05
        line = sprintf("%-26s s3share %.1f MiB/s: %s of %s", w, mine[w], verdict(mine[w] / best[w], peer_goal), who[w])
        if (w in limit) line = line sprintf("; %s of the limit", verdict(mine[w] / limit[w], w ~ /^up/ ? 0.95 : 0.9))
        if (w in parts) line = line sprintf("; %.2fx of 2 curl parts", mine[w] / parts[w])
        line = line sprintf("; RSS %.1f MiB (%s)", rss[w], rss[w] <= 64 ? "<= 64" : "OVER 64")
        print line
    }
}
