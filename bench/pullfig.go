package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
)

// What one pull costs the server, counted from the requests the client
// library actually makes (an engine's verifier, the admission webhook and
// `signet resolve` all resolve through it), not from a model of them.

// PullCount is what one Resolve cost in requests and response bytes.
type PullCount struct {
	Repo     string `json:"repo"`
	Case     string `json:"case"`
	Requests int    `json:"requests"`
	Bytes    int64  `json:"bytes"`
	// HeaderBytes is the answers' status lines and headers as HTTP/1.1
	// sends them (reconstructed from the parsed response).
	HeaderBytes int64 `json:"header_bytes"`
	// Files counts requests by file and status, e.g. "timestamp.json 304".
	Files []string `json:"files"`
}

// requestLog is a transport that records each request's file and status
// and the bytes of each answer.
type requestLog struct {
	rt    http.RoundTripper
	mu    sync.Mutex
	files map[string]int
	n     int
	bytes int64
	hdr   int64
}

var versioned = regexp.MustCompile(`^[0-9]+\.`)

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	file := r.URL.EscapedPath()
	if i := strings.LastIndex(file, "/_trust/tuf/"); i >= 0 {
		file = file[i+len("/_trust/tuf/"):]
	}
	if f, err := url.PathUnescape(file); err == nil {
		file = f
	}
	file = versioned.ReplaceAllString(file, "N.")
	if strings.Contains(file, client.BinsPrefix+"-") {
		file = "N." + client.BinsPrefix + "-XX.json"
	}
	l.mu.Lock()
	l.files[fmt.Sprintf("%s %d", file, resp.StatusCode)]++
	l.n++
	l.hdr += int64(len("HTTP/1.1 ") + len(resp.Status) + 2 + 2)
	for k, vs := range resp.Header {
		for _, v := range vs {
			l.hdr += int64(len(k) + 2 + len(v) + 2)
		}
	}
	l.mu.Unlock()
	resp.Body = &countedBody{ReadCloser: resp.Body, l: l}
	return resp, nil
}

type countedBody struct {
	io.ReadCloser
	l *requestLog
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.l.mu.Lock()
	b.l.bytes += int64(n)
	b.l.mu.Unlock()
	return n, err
}

// take returns what was recorded since the last take, and resets.
func (l *requestLog) take(repo, name string) PullCount {
	l.mu.Lock()
	defer l.mu.Unlock()
	pc := PullCount{Repo: repo, Case: name, Requests: l.n, Bytes: l.bytes, HeaderBytes: l.hdr}
	for f, n := range l.files {
		pc.Files = append(pc.Files, fmt.Sprintf("%d × %s", n, f))
	}
	slices.Sort(pc.Files)
	l.files, l.n, l.bytes, l.hdr = map[string]int{}, 0, 0, 0
	return pc
}

// pullCounts resolves tags of a flat repository (10 tags) and of one in
// 256 hashed bins (1,000 tags) through replica 0, the way an engine does:
// from an empty cache, warm with nothing changed, warm after a publish,
// and warm within MaxStaleness.
func (c *cluster) pullCounts(ctx context.Context) ([]PullCount, error) {
	var out []PullCount
	for _, repo := range []struct {
		name string
		tags int
		bins int
	}{{"flat, 10 tags", 10, 0}, {"256 hashed bins, 1000 tags", 1000, 256}} {
		gun := fmt.Sprintf("scale.example.com/pull-%d-%d", repo.tags, repo.bins)
		dir := filepath.Join(c.tmp, "pull-owner-"+filepath.Base(gun))
		owner, err := client.New(client.Options{Server: c.url(0), TrustDir: dir, Timeout: time.Minute,
			Keys: client.NewFileKeyStore(filepath.Join(dir, "private"), pass, 0)})
		if err != nil {
			return nil, err
		}
		root, err := owner.Init(ctx, gun)
		if err != nil {
			return nil, fmt.Errorf("init %s: %w", gun, err)
		}
		if repo.bins > 0 {
			if _, err := owner.Shard(ctx, gun, repo.bins); err != nil {
				return nil, fmt.Errorf("shard %s: %w", gun, err)
			}
		}
		changes := make([]client.Change, repo.tags)
		for i := range changes {
			tag := fmt.Sprintf("tag-%d", i)
			changes[i] = client.Change{Tag: tag, Digest: digest.FromString(tag), Size: 1}
		}
		if _, err := owner.Publish(ctx, gun, changes); err != nil {
			return nil, fmt.Errorf("seed %s: %w", gun, err)
		}
		log := &requestLog{rt: http.DefaultTransport, files: map[string]int{}}
		engine := func(name string, staleness time.Duration) (*client.Client, error) {
			d := filepath.Join(c.tmp, "pull-engine-"+name+"-"+filepath.Base(gun))
			e, err := client.New(client.Options{Server: c.url(0), TrustDir: d, HTTPClient: &http.Client{Transport: log}, MaxStaleness: staleness,
				Keys: client.NewFileKeyStore(filepath.Join(d, "private"), pass, 0)})
			if err != nil {
				return nil, err
			}
			return e, e.PinRoot(gun, root)
		}
		eng, err := engine("strict", 0)
		if err != nil {
			return nil, err
		}
		stale, err := engine("stale", time.Hour)
		if err != nil {
			return nil, err
		}
		resolve := func(e *client.Client, tag, name string) error {
			if _, err := e.Resolve(ctx, gun+":"+tag); err != nil {
				return fmt.Errorf("%s, %s: resolve %s: %w", repo.name, name, tag, err)
			}
			out = append(out, log.take(repo.name, name))
			return nil
		}
		steps := []func() error{
			func() error { return resolve(eng, "tag-1", "cold engine (empty cache)") },
			func() error { return resolve(eng, "tag-1", "warm, nothing published") },
			func() error { return resolve(eng, "tag-2", "warm, another tag, nothing published") },
			func() error {
				if _, err := owner.Publish(ctx, gun, []client.Change{{Tag: "tag-3", Digest: digest.FromString("new"), Size: 1}}); err != nil {
					return err
				}
				log.take("", "") // the owner's requests do not go through the log; reset anyway
				return resolve(eng, "tag-1", "warm, after a publish of another tag")
			},
			func() error { return resolve(stale, "tag-1", "cold engine, MaxStaleness 1h") },
			func() error { return resolve(stale, "tag-1", "warm within MaxStaleness") },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func printPulls(w io.Writer, pulls []PullCount) {
	fmt.Fprintln(w, "\nrequests per pull (client library, counted on the wire):")
	for _, p := range pulls {
		fmt.Fprintf(w, "  %-28s %-40s %2d requests %7.1f KiB bodies %5.1f KiB headers  %s\n", p.Repo, p.Case, p.Requests, float64(p.Bytes)/1024, float64(p.HeaderBytes)/1024, strings.Join(p.Files, ", "))
	}
}
