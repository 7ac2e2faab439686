#!/usr/bin/env bash
# Two "hosts" on this machine: network and hostname (UTS) namespaces joined by a veth pair,
# each rank seeing only its own host's address and name, mpirun launching into them
# through a custom rsh agent (ip netns exec + unshare --uts) and MPI talking TCP over the
# veth link (shared memory only between ranks of one host). Runs the collective checks across the two
# hosts, then halctl run with TP 2 (one rank per host) and TP 2 x PP 2 (tensor parallel
# within a host, the pipeline across them), each printing the single-device tokens.
# Exits 77 (ctest: skipped) where the machine does not allow namespaces (not root, no
# iproute2, no veth).
#
# usage: netns_hosts.sh MPIRUN HAL_MPI_RANK_CHECK HALCTL
set -u
mpirun="$1" rank_check="$2" halctl="$3"
id="h$$"
ns0="hal${id}a" ns1="hal${id}b" v0="hv${id}a" v1="hv${id}b"
work="$(mktemp -d)"
cleanup() {
  ip netns del "$ns0" 2>/dev/null
  ip netns del "$ns1" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to make network namespaces"
command -v ip >/dev/null || skip "no ip (iproute2)"
command -v unshare >/dev/null || skip "no unshare (util-linux)"
unshare --uts true 2>/dev/null || skip "cannot create hostname namespaces here"
# A /30 unlikely to collide with anything else on this machine, per run.
octet=$(( ($$ % 200) + 20 ))
a0="10.213.${octet}.1" a1="10.213.${octet}.2"
ip netns add "$ns0" 2>/dev/null || skip "cannot create network namespaces here"
ip netns add "$ns1" || skip "cannot create a second network namespace"
ip link add "$v0" type veth peer name "$v1" 2>/dev/null || skip "cannot create veth pairs here"
ip link set "$v0" netns "$ns0" && ip link set "$v1" netns "$ns1" || skip "cannot move veth ends"
ip netns exec "$ns0" ip addr add "$a0/30" dev "$v0"
ip netns exec "$ns1" ip addr add "$a1/30" dev "$v1"
for ns in "$ns0" "$ns1"; do
  ip netns exec "$ns" ip link set lo up
done
ip netns exec "$ns0" ip link set "$v0" up
ip netns exec "$ns1" ip link set "$v1" up

# mpirun starts its daemons on "hosts" through this agent instead of ssh.
cat >"$work/agent" <<AGENT
#!/bin/sh
host="\$1"; shift
case "\$host" in
  $a0) ns=$ns0; name=${ns0}host;;
  $a1) ns=$ns1; name=${ns1}host;;
  *) echo "netns agent: unknown host \$host" >&2; exit 1;;
esac
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$name; \$*"
AGENT
chmod +x "$work/agent"

# Each host has its own hostname: Open MPI keys its per-node session directories (and the
# shared-memory segments in them) by hostname, and the namespaces share /tmp and /dev/shm.
launch() {  # launch HOSTS RANKS PROGRAM ARGS...
  local hosts="$1" ranks="$2"
  shift 2
  ip netns exec "$ns0" unshare --uts env HAL_PLUGIN_PATH= HAL_COLLECTIVE_TIMEOUT=120 \
    OMPI_MCA_btl_vader_single_copy_mechanism=none sh -c 'hostname "$0"; exec "$@"' \
    "${ns0}host" timeout 240 $mpirun --host "$hosts" --mca plm_rsh_agent "$work/agent" \
    --mca btl self,vader,tcp --mca btl_tcp_if_include "${a0%.*}.0/30" \
    --mca oob_tcp_if_include "${a0%.*}.0/30" -np "$ranks" "$@"
}

fail=0
# Each rank sees only its own host's address.
where=$(launch "$a0,$a1" 2 sh -c 'ip -o -4 addr show | grep -c "10\.213\."' 2>&1)
echo "addresses seen per rank: $where"
launch "$a0,$a1" 2 "$rank_check" || { echo "FAIL: collectives across two hosts"; fail=1; }
launch "$a0:2,$a1:2" 4 "$rank_check" || { echo "FAIL: collectives, two ranks on each of two hosts"; fail=1; }

want=$(HAL_PLUGIN_PATH= "$halctl" run --model llama-tiny --prompt-ids 5,9,200 --max-new-tokens 8 | grep generated)
[ -n "$want" ] || { echo "FAIL: halctl run on one device printed no generated tokens"; exit 1; }
for layout in "2 --tensor-parallel 2|$a0,$a1" "4 --tensor-parallel 2 --pipeline-parallel 2|$a0:2,$a1:2"; do
  args="${layout%%|*}" hosts="${layout##*|}"
  ranks="${args%% *}" degrees="${args#* }"
  got=$(launch "$hosts" "$ranks" "$halctl" run --model llama-tiny --prompt-ids 5,9,200 \
    --max-new-tokens 8 $degrees | grep generated)
  if [ "$got" != "$want" ]; then
    echo "FAIL: $degrees across two hosts printed '$got', one device '$want'"
    fail=1
  else
    echo "ok: $degrees over $hosts: $got"
  fi
done
exit $fail
