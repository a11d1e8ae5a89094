#!/bin/sh
# Runs both upstream protocol suites against realtime/conformance in
# headless Chromium, RUNS times each (default 3). It downloads nothing.
# SERVER=node runs them against Node's reference servers instead.
#
#   e2e/upstream/run.sh ENGINE_IO_PROTOCOL_DIR SOCKET_IO_PROTOCOL_DIR DEPS_DIR
#
# The first two are checkouts of socketio/engine.io-protocol and
# socketio/socket.io-protocol; DEPS_DIR holds node_modules with mocha@9,
# chai@4 and chai-string@1 (see docs/protocol.md for the exact steps).
set -eu
if [ $# -ne 3 ]; then
	echo "usage: $0 ENGINE_IO_PROTOCOL_DIR SOCKET_IO_PROTOCOL_DIR DEPS_DIR" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-3}
status=0
node "$here/run.js" --suite "$1/test-suite" --mode engineio --deps "$3" --runs "$runs" --server "${SERVER:-go}" || status=1
node "$here/run.js" --suite "$2/test-suite" --mode socketio --deps "$3" --runs "$runs" --server "${SERVER:-go}" || status=1
exit $status
