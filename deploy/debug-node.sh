#!/bin/sh
# nodedoc on one node, the Kubernetes way in: a privileged debug pod in the node's PID and network
# namespaces with its / at /host. Usage: deploy/debug-node.sh NODE [IMAGE] [nodedoc arguments ...]
set -eu
node=${1:?usage: debug-node.sh NODE [IMAGE] [nodedoc arguments ...]}
image=${2:-nodedoc:0.1.0}
shift $(( $# >= 2 ? 2 : 1 ))
exec kubectl debug "node/$node" -it --profile=sysadmin --image="$image" -- nodedoc --host-root /host "$@"
