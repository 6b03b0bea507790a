# Sourced by the test trials: await_gate PATH waits until PATH exists, the signal a
# test gives once it saw what it needed of the running trial. It gives up after
# 300 s (exit 4), so that no trial outlives a test that died.
await_gate() {
  waited=0
  while [ ! -e "$1" ]; do
    if [ "$waited" -ge 6000 ]; then
      echo "error: $1 did not appear within 300 s" >&2
      exit 4
    fi
    sleep 0.05
    waited=$((waited + 1))
  done
}
