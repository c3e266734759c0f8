"""procfs: the runtime's processes, the pipes they hold, per-user pipe accounting and network namespaces."""
