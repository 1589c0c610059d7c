package tufjson

// Fast reports whether data decodes on the fast path.
func Fast(data []byte) bool { return fastTargets(data) != nil }
