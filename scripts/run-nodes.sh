#!/usr/bin/env bash
# run-nodes.sh: what `make run` runs. It starts NODES (default 3) crust-node daemons on
# loopback, each with its own data directory under one temp directory, listening on
# 127.0.0.1 (a free port each) with the LAN beacon on 127.255.255.255, so they find
# each other and nothing leaves the host. It then prints a live view of each node's
# peers (`crust-node peers`) once a second. Ctrl-C (or RUN_SECONDS, for a timed run)
# stops every daemon by PID with SIGINT, waits for each to exit, and removes the temp
# directory.
#
#   scripts/run-nodes.sh [path/to/crust-node]     NODES=5 RUN_SECONDS=10 LOGLEVEL=debug
set -euo pipefail

bin=${1:-bin/crust-node}
nodes=${NODES:-3}
run_seconds=${RUN_SECONDS:-0}
loglevel=${LOGLEVEL:-info}
beacon_port=${BEACON_PORT:-5483}

dir=$(mktemp -d -t crust-run.XXXXXX)
pids=()
stopping=0

stop_all() {
	[ "$stopping" = 1 ] && return
	stopping=1
	local failed=0
	for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
	for i in "${!pids[@]}"; do
		if wait "${pids[$i]}"; then
			echo "node$((i + 1)) stopped cleanly (exit 0)"
		else
			echo "node$((i + 1)) exited with status $?; its log: $dir/node$((i + 1))/log"
			failed=1
		fi
	done
	if [ "$failed" = 0 ]; then
		rm -rf "$dir"
	else
		echo "kept $dir for the logs"
	fi
}
trap stop_all EXIT
trap 'exit 0' INT TERM

for i in $(seq 1 "$nodes"); do
	node="$dir/node$i"
	mkdir -p "$node"
	cat >"$node/crust.toml" <<TOML
# node$i of make run: loopback only.
data_dir = "$node"
listen_addresses = ["127.0.0.1"]
listen_port = 0
upnp = false
beacon_addresses = ["127.255.255.255"]
beacon_port = $beacon_port
announce_interval = "5s"
TOML
	"$bin" --config "$node/crust.toml" --loglevel "$loglevel" >"$node/out" 2>"$node/log" &
	pids+=($!)
done

# Each daemon prints "ready ID admin=ADDR" once it is up.
ids=()
for i in $(seq 1 "$nodes"); do
	node="$dir/node$i"
	for _ in $(seq 1 100); do
		grep -q '^ready ' "$node/out" 2>/dev/null && break
		kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { echo "node$i failed to start:"; cat "$node/log"; exit 1; }
		sleep 0.1
	done
	grep -q '^ready ' "$node/out" || { echo "node$i not ready after 10 s:"; cat "$node/log"; exit 1; }
	ids+=("$(awk '/^ready /{print $2}' "$node/out")")
done

echo "started $nodes crust-node daemons under $dir (logs: $dir/node*/log)"
start=$SECONDS
while :; do
	view=$(
		echo "crust-node peers, every second; Ctrl-C stops all $nodes daemons"
		for i in $(seq 1 "$nodes"); do
			echo
			echo "== node$i ${ids[$((i - 1))]}"
			"$bin" peers --admin "unix://$dir/node$i/admin.sock" --timeout 2s 2>&1 || true
		done
	)
	if [ -t 1 ]; then printf '\033[H\033[2J'; fi
	echo "$view"
	if [ "$run_seconds" -gt 0 ] && [ $((SECONDS - start)) -ge "$run_seconds" ]; then
		break
	fi
	sleep 1
done
