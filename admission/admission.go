// Package admission is Signet's Kubernetes admission webhook: before the
// API server stores a Pod, or a Deployment, ReplicaSet, StatefulSet,
// DaemonSet, Job or CronJob with a pod template, it checks every image of
// the pod's containers, initContainers and ephemeralContainers against the
// pull policy (package policy) and, on the mutating endpoint, pins each
// signed image to the digest its tag vouches for with a JSONPatch
// ("nginx:1.27" becomes "docker.io/library/nginx:1.27@sha256:…"). The
// validating endpoint runs the same check without patching, so that a
// mutating webhook running after Signet's cannot swap an image.
//
// Decisions, per image:
//   - signed (the policy allows it as digest D): allowed; patched to
//     NAME:TAG@D unless it already pins D; a reference pinning another
//     digest is denied.
//   - allowed unsigned (require: none, default: allow) or in an exempt
//     namespace (exempt_namespaces, [kube-system] by default): allowed
//     and left exactly as written.
//   - anything else (not signed, no rule, expired trust data, a bad
//     reference, a trust server that cannot be reached): the whole
//     request is denied with one line per refused image naming the
//     container, the image and the policy's reason.
//
// On UPDATE only images that changed (per container name) are checked;
// unchanged ones were admitted when they were written. A review is
// answered within its budget (the API server's ?timeout= less a margin,
// capped by Options.ReviewTimeout): a check that has not decided by then
// denies. Fail closed: only an Allow from the policy, or a cached Allow
// still fresh, allows.
//
// The cache holds verified Allow decisions of signed images (per
// namespace and NAME:TAG or NAME@DIGEST) for at most Options.CacheTTL and
// never beyond the expiry of the TUF metadata that vouched
// (policy.Decision.TrustExpires: root, timestamp, snapshot and every role
// the resolve read), in a bounded LRU; concurrent checks of one image share one
// policy check. Denials are never cached, so a fix (signing the tag)
// takes effect at once; a revocation reaches the webhook within CacheTTL.
//
// dryRun requests are answered exactly like others: the webhook has no
// side effects (sideEffects: None), and filling its in-memory cache is
// not one.
//
// The package imports the policy package, imageref, client (for the
// Expirer) and the official Kubernetes API types; it never imports the
// server. A Webhook is safe for concurrent use.
package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signetdev/signet/imageref"
	"github.com/signetdev/signet/policy"
)

// Checker decides one pull; *policy.Policy is one.
type Checker interface {
	Check(ctx context.Context, req policy.Request) policy.Decision
}

// Defaults of Options.
const (
	DefaultCacheSize     = 4096
	DefaultCacheTTL      = 30 * time.Second
	DefaultReviewTimeout = 8 * time.Second
	// maxBody bounds a review: the API server's objects are at most
	// 3 MiB, and an UPDATE carries two.
	maxBody = 8 << 20
	// maxParallel bounds the checks of one review that run at once.
	maxParallel = 8
)

// Options configure New.
type Options struct {
	// Policy decides each image. Required. An Allow is cached only when
	// it carries the TUF expiry it was decided under (TrustExpires).
	Policy Checker
	// CacheSize is the most decisions kept (default DefaultCacheSize).
	CacheSize int
	// CacheTTL is how long a verified decision answers without asking the
	// policy again (default DefaultCacheTTL; negative disables the cache).
	CacheTTL time.Duration
	// ReviewTimeout caps the time one review may take (default
	// DefaultReviewTimeout, under the API server's default 10 s); the
	// API server's own ?timeout= shortens it.
	ReviewTimeout time.Duration
	// Registerer receives the webhook's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the cache's clock (tests); default time.Now.
	Now func() time.Time
}

// Webhook serves the mutating and validating endpoints.
type Webhook struct {
	policy  Checker
	cache   *cache
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time
	m       *metrics
	sf      singleflight.Group
}

// New returns a Webhook.
func New(o Options) (*Webhook, error) {
	if o.Policy == nil {
		return nil, errors.New("admission: a policy is required")
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.ReviewTimeout == 0 {
		o.ReviewTimeout = DefaultReviewTimeout
	}
	if o.CacheSize < 0 || o.ReviewTimeout < 0 {
		return nil, errors.New("admission: cache size and review timeout must not be negative")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Webhook{policy: o.Policy, timeout: o.ReviewTimeout, log: o.Logger, now: o.Now, m: newMetrics()}
	if o.CacheTTL > 0 {
		w.cache = newCache(o.CacheSize, o.CacheTTL)
	}
	if o.Registerer != nil {
		if err := w.m.register(o.Registerer, w.cache); err != nil {
			return nil, fmt.Errorf("admission: metrics: %w", err)
		}
	}
	return w, nil
}

// Endpoint paths.
const (
	MutatePath   = "/mutate"
	ValidatePath = "/validate"
)

// Handler serves MutatePath and ValidatePath.
func (w *Webhook) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+MutatePath, w.endpoint("mutate", true))
	mux.Handle("POST "+ValidatePath, w.endpoint("validate", false))
	return mux
}

func (w *Webhook) endpoint(name string, mutate bool) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ar, status, err := decodeReview(r)
		if err != nil {
			w.m.reviews.WithLabelValues(name, "bad_request").Inc()
			w.log.WarnContext(r.Context(), "bad admission review", "endpoint", name, "err", err)
			http.Error(rw, err.Error(), status)
			return
		}
		budget := w.budget(r)
		ctx, cancel := context.WithTimeout(r.Context(), budget)
		defer cancel()
		resp := w.Review(ctx, name, mutate, ar.Request)
		out := admissionv1.AdmissionReview{TypeMeta: ar.TypeMeta, Response: resp}
		body, err := json.Marshal(out)
		if err != nil {
			http.Error(rw, "cannot encode the response", http.StatusInternalServerError)
			return
		}
		result := "denied"
		if resp.Allowed {
			result = "allowed"
		}
		w.m.reviews.WithLabelValues(name, result).Inc()
		w.m.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write(body)
	})
}

// decodeReview reads an admission.k8s.io/v1 AdmissionReview.
func decodeReview(r *http.Request) (*admissionv1.AdmissionReview, int, error) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("admission: content type %q, want application/json", r.Header.Get("Content-Type"))
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("admission: read the review: %w", err)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &ar); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("admission: decode the review: %w", err)
	}
	if ar.APIVersion != admissionv1.SchemeGroupVersion.String() || ar.Kind != "AdmissionReview" {
		return nil, http.StatusBadRequest, fmt.Errorf("admission: got %s %s, want %s AdmissionReview (admissionReviewVersions: [v1])", ar.APIVersion, ar.Kind, admissionv1.SchemeGroupVersion)
	}
	if ar.Request == nil || ar.Request.UID == "" {
		return nil, http.StatusBadRequest, errors.New("admission: the review has no request (or no uid)")
	}
	return &ar, 0, nil
}

// budget is the time a review may take: the API server's ?timeout=
// (the webhook's timeoutSeconds) less a fifth for the way back, capped by
// the configured ReviewTimeout.
func (w *Webhook) budget(r *http.Request) time.Duration {
	b := w.timeout
	if t, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil && t > 0 {
		b = min(b, t*4/5)
	}
	return b
}

// Review answers one admission request; the response's uid is the
// request's. mutate adds the JSONPatch that pins signed images.
func (w *Webhook) Review(ctx context.Context, endpoint string, mutate bool, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID}
	log := w.log.With("uid", string(req.UID), "endpoint", endpoint, "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "operation", string(req.Operation), "dry_run", req.DryRun != nil && *req.DryRun)
	deny := func(code int32, msg string) *admissionv1.AdmissionResponse {
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: metav1.StatusReasonForbidden, Message: msg}
		if code == http.StatusBadRequest {
			resp.Result.Reason = metav1.StatusReasonBadRequest
		}
		return resp
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		resp.Allowed = true // DELETE and CONNECT run no new image
		return resp
	}
	imgs, err := imagesOf(req.Kind, req.Object.Raw)
	if err != nil {
		log.WarnContext(ctx, "review refused", "err", err)
		return deny(http.StatusBadRequest, "signet: "+err.Error())
	}
	if req.Operation == admissionv1.Update {
		old, err := imagesOf(req.Kind, req.OldObject.Raw)
		if err != nil {
			log.WarnContext(ctx, "review refused", "err", err)
			return deny(http.StatusBadRequest, "signet: old object: "+err.Error())
		}
		imgs = changed(imgs, old)
	}
	outs := w.checkAll(ctx, endpoint, req.Namespace, imgs)
	var denied []string
	var patch []patchOp
	for i, o := range outs {
		im := imgs[i]
		if !o.allowed {
			denied = append(denied, fmt.Sprintf("container %q (%s) image %q: %s", im.container, im.field, im.image, o.reason))
			log.WarnContext(ctx, "image denied", "container", im.container, "image", im.image, "reason", o.reason, "class", o.class)
			continue
		}
		if mutate && o.pin != "" {
			patch = append(patch, patchOp{Op: "replace", Path: im.path, Value: o.pin})
			log.InfoContext(ctx, "image pinned", "container", im.container, "image", im.image, "pinned", o.pin)
		}
	}
	if len(denied) > 0 {
		log.InfoContext(ctx, "review denied", "images", len(imgs), "denied", len(denied))
		return deny(http.StatusForbidden, "signet: "+strings.Join(denied, "; "))
	}
	resp.Allowed = true
	if len(patch) > 0 {
		data, err := json.Marshal(patch)
		if err != nil {
			return deny(http.StatusInternalServerError, "signet: cannot encode the patch")
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = data, &pt
	}
	log.InfoContext(ctx, "review allowed", "images", len(imgs), "patched", len(patch))
	return resp
}

// outcome is the decision for one image.
type outcome struct {
	allowed bool
	// pin is the image to write instead (mutating), or "".
	pin    string
	reason string
	class  string
}

// checkAll decides every image, at most maxParallel at a time.
func (w *Webhook) checkAll(ctx context.Context, endpoint, ns string, imgs []image) []outcome {
	outs := make([]outcome, len(imgs))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			outs[i] = w.decide(ctx, ns, imgs[i].image)
			result := "deny"
			if outs[i].allowed {
				result = "allow"
			}
			w.m.decisions.WithLabelValues(endpoint, result, outs[i].class).Inc()
		}()
	}
	wg.Wait()
	return outs
}

// decide judges one image. A tagged reference is checked as NAME:TAG (so
// that "app:1", "app:1@D" and the pinned form share one cached decision)
// and a pinned digest compared with the one the tag vouches for; a
// digest-only reference is checked as NAME@DIGEST; neither is NAME:latest,
// as the kubelet pulls it.
func (w *Webhook) decide(ctx context.Context, ns, img string) outcome {
	ref, err := imageref.Parse(img)
	if err != nil {
		return outcome{reason: strings.TrimPrefix(err.Error(), "imageref: "), class: "invalid_reference"}
	}
	q := ref
	switch {
	case q.Tag != "":
		q.Digest = ""
	case q.Digest == "":
		q.Tag = "latest"
	}
	d, src := w.check(ctx, ns, q.String())
	if d.Role != "" || src == fromCache {
		w.m.cache.WithLabelValues(string(src)).Inc()
	}
	if !d.Allowed() {
		return outcome{reason: d.Reason, class: classOf(d)}
	}
	if d.Role == "" {
		// Exempt or allowed unsigned: passed through as written.
		if d.Rule == "exempt_namespaces" {
			return outcome{allowed: true, class: "exempt"}
		}
		return outcome{allowed: true, class: "unsigned_allowed"}
	}
	if ref.Digest != "" && ref.Digest != d.Digest {
		return outcome{reason: fmt.Sprintf("%s pins %s, but %s:%s is signed as %s", img, ref.Digest, d.Name, d.Tag, d.Digest), class: "digest_mismatch"}
	}
	if ref.Digest == d.Digest {
		return outcome{allowed: true, class: "signed"}
	}
	return outcome{allowed: true, pin: q.Name + ":" + q.Tag + "@" + d.Digest.String(), class: "signed"}
}

// source says where a decision came from (the cache metric's result).
type source string

const (
	fromCache  source = "hit"
	fromPolicy source = "miss"
	// fromShared: joined a policy check another review had started.
	fromShared source = "shared"
)

// check asks the cache, then the policy; concurrent checks of one key
// share one policy check, which is not cut short when the first caller
// gives up (the policy's own timeout bounds it).
func (w *Webhook) check(ctx context.Context, ns, ref string) (policy.Decision, source) {
	key := ns + "\x00" + ref
	if w.cache != nil {
		if d, ok := w.cache.get(key, w.now()); ok {
			return d, fromCache
		}
	}
	ran := false // set only if this caller's function is the one that runs
	ch := w.sf.DoChan(key, func() (any, error) {
		ran = true
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.timeout)
		defer cancel()
		d := w.policy.Check(sctx, policy.Request{Ref: ref, Namespace: ns})
		if w.cache != nil && d.Allowed() && d.Role != "" {
			if d.TrustExpires.IsZero() {
				w.log.DebugContext(ctx, "decision not cached: no TUF expiry", "name", d.Name)
			} else {
				w.cache.put(key, d, w.now(), d.TrustExpires)
			}
		}
		return d, nil
	})
	select {
	case r := <-ch:
		if ran {
			return r.Val.(policy.Decision), fromPolicy
		}
		return r.Val.(policy.Decision), fromShared
	case <-ctx.Done():
		return policy.Decision{Verdict: policy.Error, Ref: ref, Reason: fmt.Sprintf("cannot verify %s within the webhook's time budget; refusing", ref), Err: ctx.Err()}, fromPolicy
	}
}
