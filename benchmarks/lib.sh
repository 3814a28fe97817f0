# Shared by the network benchmarks (sourced, not run).

# listening_port LOG HOST: waits up to a minute for `fedswift serve`, whose output goes to LOG, to
# print "listening on HOST:PORT", and prints PORT; fails with the log's tail if it never does.
listening_port() {
  local log="$1" host="$2"
  for _ in $(seq 600); do
    if grep -q "listening on $host:" "$log" 2>/dev/null; then
      grep -o "listening on $host:[0-9]*" "$log" | head -1 | cut -d: -f2
      return 0
    fi
    sleep 0.1
  done
  echo "serve did not start listening on $host; its log ($log):" >&2
  tail -20 "$log" >&2
  return 1
}
