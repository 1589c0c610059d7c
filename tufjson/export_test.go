package tufjson

// Fast reports whether data decodes on the fast path.
func Fast(data []byte) bool { return fastTargets(data) != nil }

// FastOf reports whether DecodeTargetsOf(data, names...) takes the fast path.
func FastOf(data []byte, names ...string) bool {
	if names == nil {
		names = []string{}
	}
	return fastTargetsOf(data, names) != nil
}
