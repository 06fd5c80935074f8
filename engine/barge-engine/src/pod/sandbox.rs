//! A pod's sandbox: namespaces pinned by files, its network, its files, its cgroup.
