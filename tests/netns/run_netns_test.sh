#!/usr/bin/env bash
# Multi-host on one machine (issue 18): a scheduler, two workers and a client, each in its own
# network namespace with its own address, joined by veth pairs to a bridge in a fifth
# namespace. Checks a computation, then cuts one worker's link in the middle of the same
# graph: the result must equal the undisturbed one. Traffic stays inside the namespaces this
# script makes (10.213.0.0/24). Needs root; exits 77 (skipped) without it.
#   run_netns_test.sh DSCHEDULER NETNS_APP
set -u
dscheduler=$1
app=$2
if [ "$(id -u)" != 0 ] || ! command -v ip > /dev/null; then
  echo "skipped: needs root and iproute2"
  exit 77
fi
tag="dt$$"
work=$(mktemp -d /tmp/distrib-netns-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null; done
  for n in sched w1 w2 client br; do ip netns del "$tag-$n" 2> /dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAILED: $*"
  for f in "$work"/*.log; do echo "--- $f"; tail -n 30 "$f"; done
  exit 1
}

# Waits up to $3 seconds for $2 to appear in file $1.
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2> /dev/null && return 0
    sleep 0.1
  done
  return 1
}

if ! ip netns add "$tag-br" 2> "$work/netns.err"; then
  echo "skipped: cannot make network namespaces here: $(cat "$work/netns.err")"
  exit 77
fi
ip -n "$tag-br" link add br0 type bridge || fail "no bridge"
ip -n "$tag-br" link set br0 up
ip -n "$tag-br" link set lo up
i=1
for n in sched w1 w2 client; do
  ip netns add "$tag-$n" || fail "netns $n"
  ip link add "v-$tag-$i" netns "$tag-$n" type veth peer name "p$i" netns "$tag-br" || fail "veth $n"
  ip -n "$tag-$n" link set lo up
  ip -n "$tag-$n" addr add "10.213.0.$i/24" dev "v-$tag-$i"
  ip -n "$tag-$n" link set "v-$tag-$i" up
  ip -n "$tag-br" link set "p$i" master br0
  ip -n "$tag-br" link set "p$i" up
  i=$((i + 1))
done

token="$work/token"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token"
export DISTRIB_AUTH_TOKEN
DISTRIB_AUTH_TOKEN=$(cat "$token")

# A short worker TTL: a worker whose link is cut is declared dead after 3 s of silence.
ip netns exec "$tag-sched" "$dscheduler" --host 10.213.0.1 --port 8786 --dashboard-address none \
  --worker-ttl 3 --log-level info > "$work/scheduler.log" 2>&1 &
pids+=($!)
wait_for "$work/scheduler.log" "distrib scheduler at tcp://10.213.0.1:8786" 30 || fail "the scheduler did not start"

for w in 1 2; do
  ip netns exec "$tag-w$w" "$app" --distrib-worker tcp://10.213.0.1:8786 --host "10.213.0.$((w + 1))" \
    --nthreads 1 --name "w$w" --death-timeout 10 --no-nanny > "$work/w$w.log" 2>&1 &
  pids+=($!)
done
for w in 1 2; do
  wait_for "$work/w$w.log" "distrib worker at tcp://10.213.0.$((w + 1)):" 30 || fail "worker $w did not start"
done

# The undisturbed run.
export DISTRIB_SCHEDULER_ADDRESS=tcp://10.213.0.1:8786
ip netns exec "$tag-client" timeout 120 "$app" > "$work/client1.log" 2>&1 || fail "the first run failed"
expected=$(grep -o 'result=[0-9]*' "$work/client1.log")
[ "$expected" = "result=2646700" ] || fail "the first run gave '$expected', not result=2646700"
echo "undisturbed: $expected"

# The same graph; worker 1's link is cut once half of it is done.
ip netns exec "$tag-client" timeout 180 "$app" signal-half > "$work/client2.log" 2>&1 &
client=$!
pids+=($client)
wait_for "$work/client2.log" "^half" 60 || fail "the second run never got half way"
ip -n "$tag-br" link set p2 down || fail "could not cut worker 1's link"
echo "cut worker 1's link"
wait "$client" || fail "the second run failed"
got=$(grep -o 'result=[0-9]*' "$work/client2.log")
[ "$got" = "$expected" ] || fail "with a cut link the result was '$got', not $expected"
grep -q "w1\|10.213.0.2" "$work/scheduler.log" || fail "the scheduler's log does not mention the lost worker"
echo "with worker 1 cut off: $got"
echo "PASSED"
