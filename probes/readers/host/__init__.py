"""Files on the host: runtime binaries, the containerd systemd unit, containerd's and the kubelet's configuration."""
