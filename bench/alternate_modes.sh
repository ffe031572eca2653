# Sourced by bench/compare_inproc.sh and compare_tls.sh: for `rounds` rounds, for each mode of
# `modes` in turn, `set_mode MODE` sets the environment, then the round trip and 20k map
# (bench_throughput) and 1 GB scatter/gather (bench_transfer) run, their JSON lines tagged
# with the mode. Alternating keeps a noisy machine's drift out of the comparison.
i=0
while [ "$i" -lt "$rounds" ]; do
  for mode in $modes; do
    set_mode "$mode"
    "$build/bench/bench_throughput" 20000 1 map,rtt | sed "s/^{/{\"mode\": \"$mode\", /"
    "$build/bench/bench_transfer" 1 1GB | sed "s/^{/{\"mode\": \"$mode\", /"
  done
  i=$((i + 1))
done
