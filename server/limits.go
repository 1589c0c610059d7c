package server

import (
	"net/http"
	"strings"
	"sync"

	"golang.org/x/time/rate"
)

// keyLimiter rate-limits the creation of server keys per client (its
// address, through trusted proxies: see clientaddr.go), so that one client
// cannot fill the signer's key store.
type keyLimiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

// maxTrackedClients bounds the limiter's memory; past it the table starts
// afresh (a burst of new clients gets a fresh allowance, nothing more).
const maxTrackedClients = 10_000

func newKeyLimiter(perSecond float64, burst int) *keyLimiter {
	return &keyLimiter{rate: rate.Limit(perSecond), burst: burst, clients: map[string]*rate.Limiter{}}
}

func (l *keyLimiter) allow(r *http.Request) bool {
	if l.rate <= 0 {
		return true
	}
	client := clientAddr(r.Context())
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxTrackedClients {
			clear(l.clients)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.clients[client] = lim
	}
	return lim.Allow()
}

// gunAllowed reports whether gun is under one of the allowed prefixes (all
// GUNs when there are none). A prefix matches whole path components:
// "registry.example.com" admits "registry.example.com/app", never
// "registry.example.com.evil.io/app"; a prefix ending in "/" is the same
// as one without.
func gunAllowed(prefixes []string, gun string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		p = strings.TrimSuffix(p, "/")
		if rest, ok := strings.CutPrefix(gun, p); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
			return true
		}
	}
	return false
}
