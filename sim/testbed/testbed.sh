#!/usr/bin/env bash
# testbed.sh: a real-NAT testbed made of Linux network namespaces (needs root).
#
#   testbed.sh up [--prefix P] [--netem DELAY [--netem-method tc|nfqueue|auto]]
#                 [--inbound ROUTER=POLICY]... [--udp-timeout SECONDS] [--owner PID]
#   testbed.sh down [--prefix P]
#   testbed.sh status [--prefix P]
#   testbed.sh restart-upnp [--prefix P]
#   testbed.sh reap       tear down every testbed whose owner process has exited
#   testbed.sh deps       install the Debian packages the testbed uses (only the missing ones)
#
# Nothing is linked to the root namespace: no packet can leave the testbed. The
# "internet" is a namespace that routes between sites, so every site is a real hop:
#
#   P-stun  198.0.10.10 and .11: coturn on ports 3478/3479 (UDP and TCP),
#           stund (RFC 3489) beside it on ports 3480/3481 (UDP)
#   P-pub   198.0.20.10 (public host, no NAT)
#     |
#   P-inet  routes; its side of each link is .1 (198.0.10.1, 198.0.20.1, 198.0.1.1, ...)
#     |
#   P-nat1  WAN 198.0.1.2, LAN 192.168.1.1/24: endpoint-independent, port-preserving
#           MASQUERADE; miniupnpd (UPnP IGD, NAT-PMP) on the LAN, port 2189
#             P-h1a 192.168.1.10, P-h1b 192.168.1.11
#   P-nat2  WAN 198.0.2.2, LAN 192.168.2.1/24: MASQUERADE --random-fully ("symmetric")
#             P-h2a 192.168.2.10
#   P-fw    WAN 198.0.3.2, LAN 198.0.30.1/24: firewall only, routable LAN, no NAT
#             P-h3a 198.0.30.10
#   P-nat3  WAN 198.0.4.2, LAN 192.168.3.1/24: endpoint-independent, port-preserving
#           MASQUERADE like nat1, without miniupnpd (the far side of a hole punch)
#             P-h4a 192.168.3.10
#
# IPv6 runs beside it where a site has no NAT, as on the IPv6 internet: stun
# 2001:db8:10::10 and ::11 (coturn on both too), pub 2001:db8:20::10, and fw's site (WAN 2001:db8:3::2, LAN 2001:db8:30::1/64, P-h3a
# 2001:db8:30::10), routed by P-inet, fw's stateful firewall (ip6tables) playing the
# same inbound policy as for IPv4 (neighbour discovery and the router's own ICMPv6
# allowed). The documentation prefix 2001:db8::/32 never leaves the testbed.
#
# The internet addresses are not in a reserved or documentation range: miniupnpd
# 2.3 refuses to map ports when its WAN address is. They exist only in the testbed.
#
# --inbound ROUTER=POLICY (ROUTER nat1, nat2, nat3 or fw, or "all"): what the router does
# with unsolicited inbound packets on its WAN: drop (default), reject (TCP RST, ICMP port
# unreachable otherwise) or open (no filter at all: plain MASQUERADE, or plain routing
# for fw). --netem DELAY (e.g. 20ms) delays both directions of every router's WAN link,
# so a packet between two sites behind routers gains DELAY twice, and a round trip four
# times. --netem-method says how:
#   tc       (default) a netem qdisc on both ends of each WAN link; needs sch_netem in
#            the kernel: exit status 3 when it is missing.
#   nfqueue  P-inet queues every packet entering or leaving it on a WAN link to NFQUEUE
#            queue 0 (iptables NFQUEUE, no bypass): a program must bind that queue inside
#            P-inet and accept each packet DELAY after it arrives. testbed.Up (Go) does;
#            from a shell, nothing does and the WAN links carry nothing.
#   auto     tc when the kernel has netem, nfqueue otherwise.
# The env file says which: NETEM_METHOD (tc or nfqueue; empty without --netem) and
# NETEM_QUEUE. --udp-timeout sets the routers' UDP conntrack timeouts (unreplied and
# stream), to test mapping expiry.
# --owner PID ties the testbed to a process: "reap" removes it once that process is gone.
#
# Every address is written to RUN_DIR/env (KEY=VALUE lines) and printed by up and status.
# RUN_DIR is /run/crust-testbed/P (CRUST_TESTBED_RUN overrides the parent directory);
# it also holds PID files, daemon configs and logs. down kills every process inside the
# namespaces by PID, deletes the namespaces and the run dir; it is idempotent and safe
# after a half-failed up (which tears itself down anyway).

set -eEuo pipefail
# Say which command failed: set -e alone exits silently.
on_err() { echo "testbed: failed (status $1) at line $2: $3" >&2; }
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

RUN_BASE=${CRUST_TESTBED_RUN:-/run/crust-testbed}
PREFIX=cb
ROUTERS=(nat1 nat2 fw nat3)
HOSTS=(h1a h1b h2a h3a h4a)
# Every namespace of a testbed, by suffix.
SUFFIXES=(inet stun pub "${ROUTERS[@]}" "${HOSTS[@]}")

# Packages for deps, and the daemons whose packages might start them in the root
# namespace (name and the PID file of the package's init script).
PACKAGES=(coturn stun-server stun-client miniupnpd miniupnpd-iptables miniupnpc iptables
	conntrack iproute2 socat tcpdump iputils-ping)
DAEMON_PIDFILES=(turnserver:/run/turnserver.pid stund:/run/stun.pid miniupnpd:/run/miniupnpd.pid)

# The plan. Internet side: one /24 per link, the inet end is .1.
STUN_NET=198.0.10
STUN_ADDR1=$STUN_NET.10
STUN_ADDR2=$STUN_NET.11
STUN_PORT=3478
STUN_ALT_PORT=3479
STUND_ADDR1=$STUN_ADDR1
STUND_ADDR2=$STUN_ADDR2
STUND_PORT=3480
STUND_ALT_PORT=3481
PUB_NET=198.0.20
PUB_ADDR=$PUB_NET.10
STUN_NET6=2001:db8:10
STUN_ADDR6_1=$STUN_NET6::10
STUN_ADDR6_2=$STUN_NET6::11
PUB_NET6=2001:db8:20
PUB_ADDR6=$PUB_NET6::10
FW_WAN_NET6=2001:db8:3
FW_LAN_NET6=2001:db8:30
H3A_ADDR6=$FW_LAN_NET6::10
declare -A WAN_NET=([nat1]=198.0.1 [nat2]=198.0.2 [fw]=198.0.3 [nat3]=198.0.4)
declare -A LAN_NET=([nat1]=192.168.1 [nat2]=192.168.2 [fw]=198.0.30 [nat3]=192.168.3)
declare -A NAT_MODE=([nat1]=cone [nat2]=symmetric [fw]=none [nat3]=cone)
declare -A HOST_ROUTER=([h1a]=nat1 [h1b]=nat1 [h2a]=nat2 [h3a]=fw [h4a]=nat3)
declare -A HOST_OCTET=([h1a]=10 [h1b]=11 [h2a]=10 [h3a]=10 [h4a]=10)
# The NFQUEUE queue that --netem-method nfqueue uses in P-inet.
NETEM_QUEUE=0
UPNP_PORT=2189
# The policy-rc.d that deps wrote (and removes), if any.
POLICY_MADE=

usage() {
	cat >&2 <<-'EOF'
		usage: testbed.sh up [--prefix P] [--netem DELAY [--netem-method tc|nfqueue|auto]]
		                     [--inbound ROUTER=POLICY]... [--udp-timeout SECONDS] [--owner PID]
		       testbed.sh down [--prefix P]
		       testbed.sh status [--prefix P]
		       testbed.sh restart-upnp [--prefix P]
		       testbed.sh reap
		       testbed.sh deps
		The default prefix is cb. ROUTER is nat1, nat2, nat3, fw or all; POLICY is drop,
		reject or open.
	EOF
}

log() { echo "testbed: $*" >&2; }
die() {
	log "$*"
	exit 1
}

need_root() {
	[[ $(id -u) == 0 ]] || die "must run as root (network namespaces, iptables)"
}

# ns SUFFIX: the namespace name for this testbed.
ns() { echo "$PREFIX-$1"; }
# nsexec SUFFIX CMD...: run a command inside one of this testbed's namespaces.
nsexec() {
	local n
	n=$(ns "$1")
	shift
	ip netns exec "$n" "$@"
}
ipt() { nsexec "$1" iptables-legacy -w "${@:2}"; }
ip6t() { nsexec "$1" ip6tables-legacy -w "${@:2}"; }

run_dir() { echo "$RUN_BASE/$PREFIX"; }

parse_prefix() {
	[[ $PREFIX =~ ^[a-z][a-z0-9]{0,15}$ ]] ||
		die "prefix '$PREFIX': want a lower-case letter then up to 15 letters or digits"
}

# ---------------------------------------------------------------------------- up

declare -A INBOUND=([nat1]=drop [nat2]=drop [fw]=drop [nat3]=drop)
NETEM=
NETEM_METHOD=tc
UDP_TIMEOUT=
OWNER=0

cmd_up() {
	while (($#)); do
		case $1 in
		--prefix) PREFIX=${2:?--prefix needs a value}; shift 2 ;;
		--netem) NETEM=${2:?--netem needs a delay}; shift 2 ;;
		--netem-method) NETEM_METHOD=${2:?--netem-method needs tc, nfqueue or auto}; shift 2 ;;
		--udp-timeout) UDP_TIMEOUT=${2:?--udp-timeout needs seconds}; shift 2 ;;
		--owner) OWNER=${2:?--owner needs a PID}; shift 2 ;;
		--inbound)
			local spec=${2:?--inbound needs ROUTER=POLICY} r p
			r=${spec%%=*} p=${spec#*=}
			[[ $p =~ ^(drop|reject|open)$ ]] || die "--inbound $spec: policy is drop, reject or open"
			if [[ $r == all ]]; then
				for r in "${ROUTERS[@]}"; do INBOUND[$r]=$p; done
			elif [[ -v "INBOUND[$r]" ]]; then
				INBOUND[$r]=$p
			else
				die "--inbound $spec: router is nat1, nat2, nat3, fw or all"
			fi
			shift 2
			;;
		*) die "up: unknown argument '$1'" ;;
		esac
	done
	parse_prefix
	need_root
	[[ -z $NETEM || $NETEM =~ ^[0-9]+(\.[0-9]+)?(us|ms|s)$ ]] || die "--netem '$NETEM': want a delay like 20ms"
	[[ $NETEM_METHOD =~ ^(tc|nfqueue|auto)$ ]] || die "--netem-method '$NETEM_METHOD': want tc, nfqueue or auto"
	[[ -z $UDP_TIMEOUT || $UDP_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--udp-timeout '$UDP_TIMEOUT': want whole seconds"
	[[ $OWNER =~ ^[0-9]+$ ]] || die "--owner '$OWNER': want a PID"
	local s
	for s in "${SUFFIXES[@]}"; do
		[[ ! -e /run/netns/$(ns "$s") ]] || die "namespace $(ns "$s") exists: run '$0 down --prefix $PREFIX' first"
	done
	[[ ! -e $(run_dir) ]] || die "$(run_dir) exists: run '$0 down --prefix $PREFIX' first"

	# build runs in a subshell with its own set -e (a function called from an if or
	# || would run with set -e ignored), so the first failing command stops it and
	# what was made is torn down here.
	local status
	set +e
	trap - ERR
	(
		set -e
		trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR
		build
	)
	status=$?
	trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR
	set -e
	if ((status != 0)); then
		log "up failed; tearing down"
		show_logs
		teardown
		exit "$status"
	fi
	cat "$(run_dir)/env"
}

# build creates the whole testbed.
build() {
	local dir
	dir=$(run_dir)
	mkdir -p "$dir/pids" "$dir/logs" "$dir/bin"
	echo "$OWNER $(start_time "$OWNER")" >"$dir/owner"

	local s
	for s in "${SUFFIXES[@]}"; do
		ip netns add "$(ns "$s")"
		ip -n "$(ns "$s")" link set lo up
	done
	for s in inet "${ROUTERS[@]}"; do
		nsexec "$s" sysctl -qw net.ipv4.ip_forward=1
	done

	# Internet side.
	link_site stun "$STUN_NET" "$STUN_ADDR1" "$STUN_ADDR2"
	link_site pub "$PUB_NET" "$PUB_ADDR"
	local r h
	for r in "${ROUTERS[@]}"; do build_router "$r"; done
	for h in "${HOSTS[@]}"; do build_host "$h"; done
	# The firewall's LAN is routable: the internet knows where it is.
	ip -n "$(ns inet)" route add "${LAN_NET[fw]}.0/24" via "${WAN_NET[fw]}.2"
	build_ipv6
	if [[ -n $NETEM ]]; then add_delay; else NETEM_METHOD=; fi

	start_coturn
	start_stund
	start_miniupnpd
	write_env
}

# link_site SITE NET ADDR...: a host on the internet side, on its own /24 to inet.
link_site() {
	local site=$1 net=$2 a
	shift 2
	ip -n "$(ns inet)" link add "$site" type veth peer name eth0 netns "$(ns "$site")"
	ip -n "$(ns inet)" addr add "$net.1/24" dev "$site"
	ip -n "$(ns inet)" link set "$site" up
	for a in "$@"; do ip -n "$(ns "$site")" addr add "$a/24" dev eth0; done
	ip -n "$(ns "$site")" link set eth0 up
	ip -n "$(ns "$site")" route add default via "$net.1"
}

build_router() {
	local r=$1 n wan lan
	n=$(ns "$r") wan=${WAN_NET[$r]} lan=${LAN_NET[$r]}
	ip -n "$(ns inet)" link add "$r" type veth peer name wan netns "$n"
	ip -n "$(ns inet)" addr add "$wan.1/24" dev "$r"
	ip -n "$(ns inet)" link set "$r" up
	ip -n "$n" addr add "$wan.2/24" dev wan
	ip -n "$n" link set wan up
	ip -n "$n" route add default via "$wan.1"
	ip -n "$n" link add lan type bridge
	ip -n "$n" addr add "$lan.1/24" dev lan
	ip -n "$n" link set lan up
	# The LAN bridge is a plain switch: bridged frames skip iptables. Without
	# br_netfilter loaded the key does not exist, and nothing needs turning off.
	nsexec "$r" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true

	case ${NAT_MODE[$r]} in
	cone) ipt "$r" -t nat -A POSTROUTING -o wan -j MASQUERADE ;;
	symmetric) ipt "$r" -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully ;;
	none) ;;
	esac
	# Port mappings (miniupnpd adds its own accepts too, in its MINIUPNPD chain).
	inbound_policy ipt "$r" icmp-port-unreachable FORWARD -i wan -m conntrack --ctstate DNAT -j ACCEPT

	# Conntrack state is per namespace. Shorter than the kernel's defaults where a
	# test would otherwise wait on leftovers (TIME_WAIT, half-open connections).
	nsexec "$r" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=10 \
		net.netfilter.nf_conntrack_tcp_timeout_close=5 \
		net.netfilter.nf_conntrack_tcp_timeout_syn_sent=30
	if [[ -n $UDP_TIMEOUT ]]; then
		nsexec "$r" sysctl -qw "net.netfilter.nf_conntrack_udp_timeout=$UDP_TIMEOUT" \
			"net.netfilter.nf_conntrack_udp_timeout_stream=$UDP_TIMEOUT"
	fi
}

# add_delay: delay both directions of every router's WAN link by NETEM, with the
# method --netem-method chose (auto: tc if the kernel has netem).
add_delay() {
	local r first=${ROUTERS[0]} err
	if [[ $NETEM_METHOD != nfqueue ]]; then
		if err=$(nsexec "$first" tc qdisc add dev wan root netem delay "$NETEM" 2>&1); then
			NETEM_METHOD=tc
		elif [[ $NETEM_METHOD == auto ]]; then
			log "--netem: no netem qdisc in this kernel ($err); using NFQUEUE in $(ns inet)"
			NETEM_METHOD=nfqueue
		else
			log "--netem: this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): $err"
			exit 3
		fi
	fi
	for r in "${ROUTERS[@]}"; do
		if [[ $NETEM_METHOD == tc ]]; then
			[[ $r == "$first" ]] || nsexec "$r" tc qdisc add dev wan root netem delay "$NETEM"
			nsexec inet tc qdisc add dev "$r" root netem delay "$NETEM"
		else
			# P-inet has no NAT and no conntrack rule: the queue only delays. Both
			# directions of the link to r: arriving from r, and leaving towards r.
			ipt inet -t mangle -A PREROUTING -i "$r" -j NFQUEUE --queue-num "$NETEM_QUEUE"
			ipt inet -t mangle -A POSTROUTING -o "$r" -j NFQUEUE --queue-num "$NETEM_QUEUE"
		fi
	done
}

# inbound_policy TOOL ROUTER UNREACHABLE CHAIN RULE...: the router's policy for
# unsolicited packets arriving on its WAN (INBOUND), with TOOL (ipt or ip6t): accept
# what belongs to known flows, then the rule given (appended to CHAIN), then drop or
# reject the rest (TCP with a reset, anything else with ICMP type UNREACHABLE).
inbound_policy() {
	local tool=$1 r=$2 unreach=$3 chain
	shift 3
	[[ ${INBOUND[$r]} == open ]] && return
	for chain in INPUT FORWARD; do
		"$tool" "$r" -A "$chain" -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	done
	"$tool" "$r" -A "$@"
	for chain in INPUT FORWARD; do
		if [[ ${INBOUND[$r]} == drop ]]; then
			"$tool" "$r" -A "$chain" -i wan -j DROP
		else
			"$tool" "$r" -A "$chain" -i wan -p tcp -j REJECT --reject-with tcp-reset
			"$tool" "$r" -A "$chain" -i wan -j REJECT --reject-with "$unreach"
		fi
	done
}

# link6 SITE DEV NET ADDR...: IPv6 on the link between inet (NET::1, on its
# interface named SITE) and SITE's namespace (ADDR... on DEV), routed through inet.
link6() {
	local site=$1 dev=$2 net=$3 a
	shift 3
	ip -n "$(ns inet)" addr add "$net::1/64" dev "$site" nodad
	for a in "$@"; do ip -n "$(ns "$site")" addr add "$a/64" dev "$dev" nodad; done
	ip -n "$(ns "$site")" -6 route add default via "$net::1"
}

# build_ipv6: the IPv6 plane (see the top). nodad: the addresses work at once,
# without waiting for duplicate address detection.
build_ipv6() {
	local s
	for s in inet fw; do nsexec "$s" sysctl -qw net.ipv6.conf.all.forwarding=1; done
	nsexec fw sysctl -qw net.bridge.bridge-nf-call-ip6tables=0 2>/dev/null || true
	link6 stun eth0 "$STUN_NET6" "$STUN_ADDR6_1" "$STUN_ADDR6_2"
	link6 pub eth0 "$PUB_NET6" "$PUB_ADDR6"
	link6 fw wan "$FW_WAN_NET6" "$FW_WAN_NET6::2"
	ip -n "$(ns fw)" addr add "$FW_LAN_NET6::1/64" dev lan nodad
	ip -n "$(ns h3a)" addr add "$H3A_ADDR6/64" dev eth0 nodad
	ip -n "$(ns h3a)" -6 route add default via "$FW_LAN_NET6::1"
	ip -n "$(ns inet)" -6 route add "$FW_LAN_NET6::/64" via "$FW_WAN_NET6::2"
	# Neighbour discovery and the router's own ICMPv6.
	inbound_policy ip6t fw icmp6-port-unreachable INPUT -i wan -p ipv6-icmp -j ACCEPT
}

build_host() {
	local h=$1 r lan
	r=${HOST_ROUTER[$h]} lan=${LAN_NET[${HOST_ROUTER[$h]}]}
	ip -n "$(ns "$r")" link add "$h" type veth peer name eth0 netns "$(ns "$h")"
	ip -n "$(ns "$r")" link set "$h" master lan up
	ip -n "$(ns "$h")" addr add "$lan.${HOST_OCTET[$h]}/24" dev eth0
	ip -n "$(ns "$h")" link set eth0 up
	ip -n "$(ns "$h")" route add default via "$lan.1"
}

# spawn NAME SUFFIX CMD...: start a daemon in a namespace, its output in logs/NAME.log,
# its PID in pids/NAME.pid. ip netns exec execs the command, so $! is the daemon.
spawn() {
	local name=$1 dir
	dir=$(run_dir)
	ip netns exec "$(ns "$2")" "${@:3}" </dev/null >"$dir/logs/$name.log" 2>&1 &
	echo $! >"$dir/pids/$name.pid"
}

# wait_listen NAME SUFFIX PROTO ADDR:PORT: wait until the daemon NAME listens there
# (ADDR may be * for the wildcard address).
wait_listen() {
	local name=$1 suffix=$2 proto=$3 where=$4 pid deadline=$((SECONDS + 10)) filter
	pid=$(<"$(run_dir)/pids/$name.pid")
	if [[ $where == '*:'* ]]; then filter="sport = :${where#*:}"; else filter="src $where"; fi
	until [[ -n $(nsexec "$suffix" ss -Hln "-$proto" "$filter") ]]; do
		alive "$pid" || die "$name exited before listening on $proto $where"
		((SECONDS < deadline)) || die "$name does not listen on $proto $where after 10 s"
		sleep 0.05
	done
}

start_coturn() {
	local dir
	dir=$(run_dir)
	spawn coturn stun turnserver -n --stun-only \
		-L "$STUN_ADDR1" -L "$STUN_ADDR2" -L "$STUN_ADDR6_1" -L "$STUN_ADDR6_2" \
		-p "$STUN_PORT" --alt-listening-port "$STUN_ALT_PORT" \
		--no-tls --no-dtls --no-cli --db "$dir/coturn.db" \
		--log-file "$dir/logs/coturn-server.log" --simple-log --no-stdout-log \
		--pidfile "$dir/coturn.own.pid"
	local a p proto
	for a in "$STUN_ADDR1" "$STUN_ADDR2" "[$STUN_ADDR6_1]" "[$STUN_ADDR6_2]"; do
		for p in "$STUN_PORT" "$STUN_ALT_PORT"; do
			for proto in u t; do wait_listen coturn stun "$proto" "$a:$p"; done
		done
	done
}

# stund (RFC 3489) needs two addresses and two ports: it binds all four combinations,
# each to its exact address, so it shares coturn's two addresses on two other ports.
# Its client takes them as "stun ADDR:PORT".
start_stund() {
	spawn stund stun stund -h "$STUND_ADDR1" -a "$STUND_ADDR2" -p "$STUND_PORT" -o "$STUND_ALT_PORT"
	local a p
	for a in "$STUND_ADDR1" "$STUND_ADDR2"; do
		for p in "$STUND_PORT" "$STUND_ALT_PORT"; do wait_listen stund stun u "$a:$p"; done
	done
}

# miniupnpd_rules init|removeall: Debian's helper scripts create (or remove) the
# MINIUPNPD chains. They call whatever `iptables` is first on PATH; miniupnpd itself
# uses the legacy backend, so PATH gets a directory where iptables is iptables-legacy.
miniupnpd_rules() {
	local bin
	bin=$(run_dir)/bin
	if [[ ! -e $bin/iptables ]]; then
		ln -sf "$(command -v iptables-legacy)" "$bin/iptables"
		ln -sf "$(command -v ip6tables-legacy)" "$bin/ip6tables"
	fi
	PATH="$bin:$PATH" nsexec nat1 "/etc/miniupnpd/iptables_$1.sh" -i wan >>"$(run_dir)/logs/miniupnpd-rules.log" 2>&1
}

start_miniupnpd() {
	local dir conf
	dir=$(run_dir) conf=$(run_dir)/miniupnpd.conf
	if [[ ! -e $conf ]]; then
		cat >"$conf" <<-EOF
			ext_ifname=wan
			listening_ip=lan
			http_port=$UPNP_PORT
			enable_upnp=yes
			enable_natpmp=yes
			secure_mode=yes
			system_uptime=yes
			notify_interval=30
			lease_file=$dir/miniupnpd.leases
			uuid=$(</proc/sys/kernel/random/uuid)
			upnp_forward_chain=MINIUPNPD
			upnp_nat_chain=MINIUPNPD
			upnp_nat_postrouting_chain=MINIUPNPD-POSTROUTING
			allow 1024-65535 ${LAN_NET[nat1]}.0/24 1024-65535
			deny 0-65535 0.0.0.0/0 0-65535
		EOF
	fi
	miniupnpd_rules init
	spawn miniupnpd nat1 miniupnpd -4 -d -f "$conf" -P "$dir/miniupnpd.own.pid"
	# It binds the wildcard address and serves only listening_ip.
	wait_listen miniupnpd nat1 t "*:$UPNP_PORT"
}

write_env() {
	local dir r h
	dir=$(run_dir)
	{
		echo "PREFIX=$PREFIX"
		echo "RUN_DIR=$dir"
		echo "OWNER=$OWNER"
		echo "NETEM=$NETEM"
		echo "NETEM_METHOD=$NETEM_METHOD"
		echo "NETEM_QUEUE=$NETEM_QUEUE"
		echo "UDP_TIMEOUT=$UDP_TIMEOUT"
		echo "NS_INET=$(ns inet)"
		echo "NS_STUN=$(ns stun)"
		echo "STUN_ADDR1=$STUN_ADDR1"
		echo "STUN_ADDR2=$STUN_ADDR2"
		echo "STUN_PORT=$STUN_PORT"
		echo "STUN_ALT_PORT=$STUN_ALT_PORT"
		echo "STUND_ADDR1=$STUND_ADDR1"
		echo "STUND_ADDR2=$STUND_ADDR2"
		echo "STUND_PORT=$STUND_PORT"
		echo "STUND_ALT_PORT=$STUND_ALT_PORT"
		echo "NS_PUB=$(ns pub)"
		echo "PUB_ADDR=$PUB_ADDR"
		echo "STUN_ADDR6_1=$STUN_ADDR6_1"
		echo "STUN_ADDR6_2=$STUN_ADDR6_2"
		echo "PUB_ADDR6=$PUB_ADDR6"
		echo "FW_WAN6=$FW_WAN_NET6::2"
		echo "H3A_ADDR6=$H3A_ADDR6"
		for r in "${ROUTERS[@]}"; do
			local R=${r^^}
			echo "NS_$R=$(ns "$r")"
			echo "${R}_WAN=${WAN_NET[$r]}.2"
			echo "${R}_LAN=${LAN_NET[$r]}.1/24"
			echo "${R}_NAT=${NAT_MODE[$r]}"
			echo "${R}_INBOUND=${INBOUND[$r]}"
		done
		for h in "${HOSTS[@]}"; do
			local H=${h^^}
			echo "NS_$H=$(ns "$h")"
			echo "${H}_ADDR=${LAN_NET[${HOST_ROUTER[$h]}]}.${HOST_OCTET[$h]}"
			echo "${H}_ROUTER=${HOST_ROUTER[$h]}"
		done
		echo "UPNP_ROOT_URL=http://${LAN_NET[nat1]}.1:$UPNP_PORT/rootDesc.xml"
		echo "NATPMP_GATEWAY=${LAN_NET[nat1]}.1"
	} >"$dir/env.tmp"
	mv "$dir/env.tmp" "$dir/env"
}

show_logs() {
	local f
	for f in "$(run_dir)"/logs/*.log; do
		[[ -s $f ]] || continue
		log "--- $f (last lines)"
		tail -n 15 "$f" >&2
	done
}

# alive PID: the process exists and is not a zombie waiting to be reaped (an orphan's
# parent, init, may take a while to reap it).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# start_time PID: the process's start time in clock ticks (field 22 of
# /proc/PID/stat), to tell a live owner from a reused PID; 0 for none.
start_time() {
	local stat f
	if [[ $1 != 0 ]] && stat=$(cat "/proc/$1/stat" 2>/dev/null); then
		stat=${stat##*) }
		read -ra f <<<"$stat"
		echo "${f[19]}"
	else
		echo 0
	fi
}

# -------------------------------------------------------------------------- down

cmd_down() {
	while (($#)); do
		case $1 in
		--prefix) PREFIX=${2:?--prefix needs a value}; shift 2 ;;
		*) die "down: unknown argument '$1'" ;;
		esac
	done
	parse_prefix
	need_root
	teardown
}

# teardown: kill every process inside this testbed's namespaces (the daemons from
# the PID files and anything a test started there), delete the namespaces and the
# run dir. Every step tolerates what is already gone.
teardown() {
	local s n pids more pid round deadline
	# A process may fork while it is being stopped (socat does per connection):
	# look again until the namespaces are empty.
	for round in 1 2 3; do
		pids=()
		for s in "${SUFFIXES[@]}"; do
			n=$(ns "$s")
			[[ -e /run/netns/$n ]] || continue
			mapfile -t more < <(ip netns pids "$n" 2>/dev/null || true)
			pids+=("${more[@]}")
		done
		((${#pids[@]})) || break
		if ((round == 3)); then log "processes left in the namespaces: ${pids[*]}"; fi
		kill -TERM "${pids[@]}" 2>/dev/null || true
		deadline=$((SECONDS + 3))
		for pid in "${pids[@]}"; do
			while alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
			if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
		done
	done
	for s in "${SUFFIXES[@]}"; do
		n=$(ns "$s")
		[[ -e /run/netns/$n ]] || continue
		ip netns del "$n" || log "could not delete namespace $n"
	done
	rm -rf "$(run_dir)"
}

# ------------------------------------------------------------------------ status

cmd_status() {
	local only=
	while (($#)); do
		case $1 in
		--prefix) only=${2:?--prefix needs a value}; shift 2 ;;
		*) die "status: unknown argument '$1'" ;;
		esac
	done
	local found=0 d
	for d in "$RUN_BASE"/*/; do
		[[ -d $d ]] || continue
		PREFIX=$(basename "$d")
		[[ -z $only || $only == "$PREFIX" ]] || continue
		found=1
		echo "== testbed $PREFIX ($d)"
		[[ -f $d/env ]] && cat "$d/env" || echo "(no env: up did not finish)"
		local f name pid
		for f in "$d"/pids/*.pid; do
			[[ -f $f ]] || continue
			name=$(basename "$f" .pid) pid=$(<"$f")
			if alive "$pid"; then echo "process $name: pid $pid running"; else echo "process $name: pid $pid gone"; fi
		done
	done
	local n
	for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		[[ $n == *-inet && ! -d $RUN_BASE/${n%-inet} ]] && echo "== namespaces of ${n%-inet} without a run dir (down --prefix ${n%-inet} removes them)"
	done
	((found)) || [[ -n $only ]] || echo "no testbed is up"
}

# -------------------------------------------------------------------------- reap

# reap: tear down every testbed whose owner process (--owner) has exited, and the
# namespaces of any testbed ("cb" prefixes) whose run dir is gone. A testbed brought
# up without --owner stays until "down".
cmd_reap() {
	need_root
	local d owner start
	for d in "$RUN_BASE"/*/; do
		[[ -d $d ]] || continue
		PREFIX=$(basename "$d")
		read -r owner start <"$d/owner" 2>/dev/null || { owner=dead start=; }
		if [[ $owner == 0 ]]; then
			continue
		fi
		if [[ $owner != dead && $start != 0 && $(start_time "$owner") == "$start" ]]; then
			continue # the owner still runs
		fi
		log "reap: testbed $PREFIX (owner $owner gone)"
		teardown
	done
	local n
	for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		if [[ $n =~ ^(cb[a-z0-9]*)-inet$ && ! -d $RUN_BASE/${BASH_REMATCH[1]} ]]; then
			PREFIX=${BASH_REMATCH[1]}
			log "reap: namespaces of $PREFIX (no run dir)"
			teardown
		fi
	done
}

# ------------------------------------------------------------------ restart-upnp

# restart-upnp: stop miniupnpd by PID and start a fresh one, as a router does when
# its UPnP daemon restarts: every port mapping is gone (rules and lease file).
cmd_restart_upnp() {
	while (($#)); do
		case $1 in
		--prefix) PREFIX=${2:?--prefix needs a value}; shift 2 ;;
		*) die "restart-upnp: unknown argument '$1'" ;;
		esac
	done
	parse_prefix
	need_root
	local dir pid deadline
	dir=$(run_dir)
	[[ -f $dir/env ]] || die "testbed $PREFIX is not up"
	pid=$(<"$dir/pids/miniupnpd.pid")
	# Only if that PID is still inside the router: a PID can be reused.
	if ip netns pids "$(ns nat1)" | grep -qx "$pid" && kill -TERM "$pid" 2>/dev/null; then
		deadline=$((SECONDS + 5))
		while alive "$pid"; do
			((SECONDS < deadline)) || { kill -KILL "$pid" 2>/dev/null || true; break; }
			sleep 0.05
		done
	fi
	miniupnpd_rules removeall
	rm -f "$dir/miniupnpd.leases"
	mv -f "$dir/logs/miniupnpd.log" "$dir/logs/miniupnpd.previous.log" 2>/dev/null || true
	start_miniupnpd
}

# -------------------------------------------------------------------------- deps

# deps: install the missing packages without letting their maintainer scripts start
# any daemon, then make sure none of those daemons runs in the root namespace.
cmd_deps() {
	need_root
	local p missing=()
	for p in "${PACKAGES[@]}"; do
		[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		log "deps: every package is installed"
	else
		log "deps: installing ${missing[*]}"
		local policy=/usr/sbin/policy-rc.d
		if [[ ! -e $policy ]]; then
			# invoke-rc.d asks this before starting a service: 101 means "not now".
			printf '#!/bin/sh\nexit 101\n' >"$policy"
			chmod 755 "$policy"
			POLICY_MADE=$policy
			trap 'rm -f "$POLICY_MADE"' EXIT
		fi
		export DEBIAN_FRONTEND=noninteractive
		if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
			log "deps: install failed; refreshing the package lists once"
			apt-get update
			apt-get install -y --no-install-recommends "${missing[@]}"
		fi
		if [[ -n $POLICY_MADE ]]; then
			rm -f "$POLICY_MADE"
			POLICY_MADE=
			trap - EXIT
		fi
	fi
	stop_root_daemons
}

# stop_root_daemons: a package's init script may have started its daemon in the root
# namespace, on the real network. Stop it by the PID file the package uses; fail if
# one still runs.
stop_root_daemons() {
	local root_net entry name pidfile pid deadline bad=()
	# The namespace this script runs in: the machine's own when make runs it.
	root_net=$(readlink /proc/$$/ns/net)
	for entry in "${DAEMON_PIDFILES[@]}"; do
		name=${entry%%:*} pidfile=${entry#*:}
		if [[ -f $pidfile ]]; then
			pid=$(<"$pidfile")
			if [[ $(readlink "/proc/$pid/ns/net" 2>/dev/null) == "$root_net" &&
				$(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
				log "deps: stopping $name (pid $pid from $pidfile) in the root namespace"
				kill -TERM "$pid" || true
				deadline=$((SECONDS + 5))
				while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
			fi
		fi
		for pid in $(pgrep -x "$name" || true); do
			if alive "$pid" && [[ $(readlink "/proc/$pid/ns/net" 2>/dev/null) == "$root_net" ]]; then
				bad+=("$name:$pid")
			fi
		done
	done
	((${#bad[@]} == 0)) || die "deps: still running in the root namespace: ${bad[*]} (stop them: they face the real network)"
}

# ------------------------------------------------------------------------- main

main() {
	local cmd=${1:-}
	(($#)) && shift
	case $cmd in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	status) cmd_status "$@" ;;
	reap) cmd_reap "$@" ;;
	restart-upnp) cmd_restart_upnp "$@" ;;
	deps) cmd_deps "$@" ;;
	*)
		usage
		exit 2
		;;
	esac
}

main "$@"
