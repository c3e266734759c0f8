"""Our own CRI runtime.v1 protobuf subset and the stubs generated from it."""
