package signerclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"

	"github.com/signetdev/signet/internal/reqid"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/api"
)

// DefaultMaxInFlight is how many signing requests a Client keeps in flight
// at once; batches of further concurrent callers wait and go together in
// the next request (see WithMaxInFlight). Two keep the signer busy while
// the next request is being sent; with 16 concurrent callers on the
// bench's 2-core machine they carry ~7 batches a request, where 4 in
// flight carried ~3, most of them alone (signer throughput per CPU second
// ~10% better with 2).
const DefaultMaxInFlight = 2

// maxCoalescedPayload bounds the payload bytes of batches sent together,
// well under the signer's request limit once base64-encoded. A batch that
// is larger on its own still goes, alone.
const maxCoalescedPayload = 4 << 20

// WithMaxInFlight sets how many signing requests the client keeps in
// flight: while that many are, the batches of further concurrent SignBatch
// calls queue and are sent together, each still signed or refused whole on
// its own (api.PathSignBatches). A caller that finds a request slot free
// sends at once, so coalescing adds no wait; it only saves the round trips
// (and the signer's per-request work) that concurrent publishes would
// otherwise make one by one. n <= 0 turns coalescing off: every SignBatch
// is its own request.
func WithMaxInFlight(n int) Option { return func(c *Client) { c.co.max = n } }

// coalescer queues SignBatch calls while max requests are in flight.
type coalescer struct {
	max int

	mu       sync.Mutex
	inflight int
	queue    []*pending
	// old is set once the signer answered PathSignBatches with 404 (an
	// older signet-signer): batches then go one per request.
	old bool
}

// pending is one SignBatch call.
type pending struct {
	ctx  context.Context
	reqs []signer.SignRequest
	size int
	done chan struct{} // closed once sigs or err is set
	sigs [][]byte
	err  error
	gone bool // the caller gave up before the call was sent (guarded by mu)
}

// coalesced runs SignBatch calls through the queue.
func (c *Client) coalesced(ctx context.Context, reqs []signer.SignRequest) ([][]byte, error) {
	p := &pending{ctx: ctx, reqs: reqs, done: make(chan struct{})}
	for _, r := range reqs {
		p.size += len(r.Payload)
	}
	co := &c.co
	co.mu.Lock()
	co.queue = append(co.queue, p)
	if co.inflight < co.max {
		co.inflight++
		group := co.take()
		co.mu.Unlock()
		if len(group) == 1 && group[0] == p {
			// Alone (no load): the caller sends its own batch, on its own
			// context, with no hand-over to another goroutine: that would
			// wake a sleeping thread twice, and cost an idle signer's
			// caller ~0.1 ms.
			sigs, err := c.signBatch(ctx, reqs)
			c.next()
			return sigs, err
		}
		go c.flush(group)
	} else {
		co.mu.Unlock()
	}
	select {
	case <-p.done:
		return p.sigs, p.err
	case <-ctx.Done():
		co.mu.Lock()
		p.gone = true // take skips it if it is still queued
		co.mu.Unlock()
		return nil, fmt.Errorf("signerclient: sign batch of %d: %w", len(reqs), ctx.Err())
	}
}

// take removes the next request's worth of calls from the queue. Called
// with mu held.
func (co *coalescer) take() []*pending {
	var group []*pending
	size, n := 0, 0
	for ; n < len(co.queue); n++ {
		p := co.queue[n]
		if p.gone {
			continue
		}
		if len(group) == api.MaxBatches || len(group) > 0 && size+p.size > maxCoalescedPayload {
			break
		}
		group = append(group, p)
		size += p.size
	}
	clear(co.queue[:n])
	co.queue = co.queue[n:]
	if len(co.queue) == 0 {
		co.queue = co.queue[:0:0] // let the old backing array go
	}
	return group
}

// next hands the request slot of a finished request to the calls queued
// meanwhile, or gives it back.
func (c *Client) next() {
	co := &c.co
	co.mu.Lock()
	group := co.take()
	if len(group) == 0 {
		co.inflight--
	}
	co.mu.Unlock()
	if len(group) > 0 {
		go c.flush(group)
	}
}

// flush sends group, then whatever queued meanwhile, until the queue is
// empty and the request slot is given back.
func (c *Client) flush(group []*pending) {
	co := &c.co
	for len(group) > 0 {
		co.mu.Lock()
		old := co.old
		co.mu.Unlock()
		if old || len(group) == 1 {
			c.sendEach(group)
		} else {
			c.sendGroup(group)
		}
		// Let the callers just answered run first: under load most of them
		// sign again at once, and their batches should go in the next
		// request rather than one by one after it. A yield, not a wait.
		runtime.Gosched()
		co.mu.Lock()
		group = co.take()
		if len(group) == 0 {
			co.inflight--
		}
		co.mu.Unlock()
	}
}

// sendEach sends each call of group as a request of its own.
func (c *Client) sendEach(group []*pending) {
	if len(group) == 1 {
		p := group[0]
		p.sigs, p.err = c.signBatch(context.WithoutCancel(p.ctx), p.reqs)
		close(p.done)
		return
	}
	var wg sync.WaitGroup
	for _, p := range group {
		wg.Go(func() {
			p.sigs, p.err = c.signBatch(context.WithoutCancel(p.ctx), p.reqs)
			close(p.done)
		})
	}
	wg.Wait()
}

// sendGroup sends the calls of group in one request to PathSignBatches
// and hands each its own result.
func (c *Client) sendGroup(group []*pending) {
	in := api.SignBatchesRequest{Batches: make([]api.SignBatch, len(group))}
	for i, p := range group {
		in.Batches[i] = api.SignBatch{RequestID: reqid.From(p.ctx), Requests: wireRequests(p.reqs)}
	}
	var resp api.SignBatchesResponse
	// No caller's context: its cancellation must not end a request that
	// carries the others' batches too (each caller stops waiting on its
	// own), and its request ID (the X-Request-ID header) must not name
	// batches that carry none of their own.
	err := c.call(context.Background(), api.PathSignBatches, in, &resp)
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusNotFound && se.code == "" {
		c.co.mu.Lock()
		c.co.old = true
		c.co.mu.Unlock()
		c.sendEach(group)
		return
	}
	if err == nil && len(resp.Results) != len(group) {
		err = fmt.Errorf("malformed answer: %d results for %d batches", len(resp.Results), len(group))
	}
	for i, p := range group {
		if err != nil {
			p.err = fmt.Errorf("signerclient: sign batch of %d: %w", len(p.reqs), err)
		} else {
			p.sigs, p.err = batchResult(p.reqs, resp.Results[i])
		}
		close(p.done)
	}
}

// batchResult turns one batch's result into what SignBatch returns for it,
// exactly as if the batch had been a request of its own.
func batchResult(reqs []signer.SignRequest, r api.SignBatchResult) ([][]byte, error) {
	if r.Error != nil {
		err := codeError(r.Status, r.Error.Code, r.Error.Message)
		if i := r.Error.Index; i != nil && *i >= 0 && *i < len(reqs) {
			err = &signer.BatchError{Index: *i, Role: reqs[*i].Role, Err: err}
		}
		return nil, fmt.Errorf("signerclient: sign batch of %d: %w", len(reqs), err)
	}
	if len(r.Signatures) != len(reqs) {
		return nil, fmt.Errorf("signerclient: sign batch: %d signatures for %d payloads", len(r.Signatures), len(reqs))
	}
	return r.Signatures, nil
}
