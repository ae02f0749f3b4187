# stack.awk - the deepest stack of the library, from the call graphs that
# gcc -fcallgraph-info=su writes (*.ci, one per object): each function's
# frame and its calls. It walks every path from each public function
# (mqttsn_*) and prints "BYTES PATH" for the deepest one. Calls through a
# pointer (the application's callbacks and transport) and libc functions
# count as 0: the application adds its own.
/^node:/ {
	t = $0; sub(/.*title: "/, "", t); sub(/".*/, "", t)
	if ($0 ~ /bytes \(static\)|bytes \(dynamic/) {
		s = $0; sub(/ bytes \((static|dynamic)[^)]*\).*/, "", s); sub(/.*\\n/, "", s)
		frame[t] = s + 0
	}
	nodes[t] = 1
}
/^edge:/ {
	s = $0; sub(/.*sourcename: "/, "", s); sub(/".*/, "", s)
	d = $0; sub(/.*targetname: "/, "", d); sub(/".*/, "", d)
	calls[s] = calls[s] " " d
}
function depth(n,    a, k, i, v, best) {
	if (n in memo)
		return memo[n]
	if (n in visiting)
		return 0 # recursion: the library has none; do not loop
	visiting[n] = 1
	best = 0
	k = split(calls[n], a, " ")
	for (i = 1; i <= k; i++) {
		v = depth(a[i])
		if (v > best) {
			best = v
			next_of[n] = a[i]
		}
	}
	delete visiting[n]
	memo[n] = frame[n] + best
	return memo[n]
}
function short(n) { sub(/.*:/, "", n); return n }
END {
	worst = -1
	for (n in nodes)
		if (n ~ /^mqttsn_/ && depth(n) > worst) {
			worst = depth(n)
			root = n
		}
	path = short(root)
	for (n = root; n in next_of; n = next_of[n])
		path = path " > " short(next_of[n])
	print worst, path
}
