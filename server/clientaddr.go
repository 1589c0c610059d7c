package server

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Client addresses. The address a request comes from is its TCP peer,
// unless that peer is one of the configured trusted proxies: then the
// X-Forwarded-For header is read from the right (the entry the nearest
// proxy appended) and the first address that is not a trusted proxy is the
// client. Without trusted proxies the header is ignored: anyone can send
// it.

// clientAddr returns the client address withRequest found ("" outside
// the middleware).
func clientAddr(ctx context.Context) string { return infoOf(ctx).client }

// resolveClient applies the rule above.
func resolveClient(r *http.Request, trusted []netip.Prefix) string {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	hops := r.Header.Values("X-Forwarded-For")
	var addrs []string
	for _, h := range hops {
		for a := range strings.SplitSeq(h, ",") {
			addrs = append(addrs, strings.TrimSpace(a))
		}
	}
	client := peer
	for i := len(addrs) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(addrs[i])
		if err != nil {
			break // a malformed hop: stop at the last address we could trust
		}
		client = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return client.Unmap().String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
