#!/bin/sh
# A tiny stand-in for a real server: it works for a few seconds, then crashes with exit
# code 3; on SIGTERM/SIGINT it shuts down cleanly. tend restarts it with growing delays,
# gives up after the limit, and stops it gracefully on Ctrl+C.
trap 'echo "demo: got a stop signal, shutting down cleanly"; exit 0' TERM INT
echo "demo: started as pid $$"
n=0
while [ "$n" -lt 6 ]; do
    n=$((n + 1))
    echo "demo: working ($n)"
    # sleep in the background and wait, so a signal interrupts at once
    sleep 0.5 &
    wait $!
done
echo "demo: something went wrong, exiting with code 3" >&2
exit 3
