package admission_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/signetdev/signet/admission"
	"github.com/signetdev/signet/internal/testserver"
	"github.com/signetdev/signet/policy"
)

const (
	app      = "registry.example.com/team/app"
	unsigned = "registry.example.com/team/unsigned"
)

// clock is a settable clock for the cache.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// fixture is a running signet-server with a signed repository (app, tags
// 1.0 and 1.1) and a webhook over a policy that requires app and every
// other team/ repository to be signed, allows Docker Hub's official
// images unsigned, allows dev/ images unsigned in dev-* namespaces, and
// denies the rest.
type fixture struct {
	srv   *testserver.Server
	repo  *testserver.Repo
	hook  *httptest.Server
	clock *clock
	reg   *prometheus.Registry
}

func newFixture(t testing.TB, mod ...func(*admission.Options)) *fixture {
	t.Helper()
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0", "1.1")
	return newHook(t, srv, repo, mod...)
}

func newHook(t testing.TB, srv *testserver.Server, repo *testserver.Repo, mod ...func(*admission.Options)) *fixture {
	t.Helper()
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, repo.Root, 0o600); err != nil {
		t.Fatal(err)
	}
	f := &policy.File{
		Server:   policy.Server{URL: srv.URL, Timeout: 3 * time.Second},
		TrustDir: t.TempDir(),
		Rules: []policy.Rule{
			{Match: app, Require: "signed", Root: rootFile},
			{Match: "registry.example.com/team/**", Require: "signed", RootKeys: repo.RootKeyIDs()},
			{Match: "registry.example.com/dev/**", Namespaces: []string{"dev-*"}, Require: "none"},
			{Match: "docker.io/library/*", Require: "none"},
		},
	}
	p, err := policy.New(f)
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{srv: srv, repo: repo, clock: &clock{}, reg: prometheus.NewRegistry()}
	o := admission.Options{Policy: p, Registerer: fx.reg, Now: fx.clock.now}
	for _, m := range mod {
		m(&o)
	}
	w, err := admission.New(o)
	if err != nil {
		t.Fatal(err)
	}
	fx.hook = httptest.NewTLSServer(w.Handler())
	t.Cleanup(fx.hook.Close)
	return fx
}

var uids atomic.Int64

// review builds the AdmissionReview the API server sends for obj.
func review(t testing.TB, op admissionv1.Operation, ns string, obj, old runtime.Object) *admissionv1.AdmissionReview {
	t.Helper()
	raw := func(o runtime.Object) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	res := map[string]string{"Pod": "pods", "Deployment": "deployments", "ReplicaSet": "replicasets", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets", "Job": "jobs", "CronJob": "cronjobs"}[gvk.Kind]
	kind := metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind}
	resource := metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: res}
	dry := false
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:  types.UID(fmt.Sprintf("705ab4f5-6393-11e8-b7cc-%012d", uids.Add(1))),
			Kind: kind, Resource: resource, RequestKind: &kind, RequestResource: &resource,
			Name: "x", Namespace: ns, Operation: op,
			UserInfo:  authUser,
			Object:    raw(obj),
			OldObject: raw(old),
			DryRun:    &dry,
			Options:   runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
		},
	}
}

var authUser = authenticationv1.UserInfo{Username: "kubernetes-admin", Groups: []string{"system:masters"}}

// post sends a review to path (with the API server's ?timeout=) and
// decodes the answer.
func (fx *fixture) post(t *testing.T, path string, ar *admissionv1.AdmissionReview) *admissionv1.AdmissionResponse {
	t.Helper()
	body, err := json.Marshal(ar)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := fx.hook.Client().Post(fx.hook.URL+path+"?timeout=10s", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s: %s", path, resp.Status, data)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("not an AdmissionReview response: %s", data)
	}
	if out.Response.UID != ar.Request.UID {
		t.Fatalf("response uid %q, request uid %q", out.Response.UID, ar.Request.UID)
	}
	return out.Response
}

// patched applies the response's JSONPatch to the review's object and
// decodes the result into into.
func patched(t *testing.T, ar *admissionv1.AdmissionReview, r *admissionv1.AdmissionResponse, into any) {
	t.Helper()
	if !r.Allowed {
		t.Fatalf("denied: %s", r.Result.Message)
	}
	doc := ar.Request.Object.Raw
	if len(r.Patch) > 0 {
		if r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch type %v", r.PatchType)
		}
		p, err := jsonpatch.DecodePatch(r.Patch)
		if err != nil {
			t.Fatalf("patch %s: %v", r.Patch, err)
		}
		if doc, err = p.Apply(doc); err != nil {
			t.Fatalf("apply %s: %v", r.Patch, err)
		}
	}
	if err := json.Unmarshal(doc, into); err != nil {
		t.Fatal(err)
	}
}

func pod(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "x"},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

func ctr(name, img string) corev1.Container { return corev1.Container{Name: name, Image: img} }

func pinned(tag string) string { return app + ":" + tag + "@" + testserver.Digest(tag).String() }

func denied(t *testing.T, r *admissionv1.AdmissionResponse, parts ...string) {
	t.Helper()
	if r.Allowed {
		t.Fatalf("allowed, want denied (%s)", parts)
	}
	if r.Result == nil || r.Result.Code != http.StatusForbidden {
		t.Fatalf("result %+v, want code 403", r.Result)
	}
	for _, p := range parts {
		if !strings.Contains(r.Result.Message, p) {
			t.Fatalf("message %q does not say %q", r.Result.Message, p)
		}
	}
	if len(r.Patch) > 0 {
		t.Fatal("a denial carries a patch")
	}
}

func TestPodPinnedToSignedDigest(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	p := pod(ctr("app", app+":1.0"), ctr("web", "nginx:1.27"))
	p.Spec.InitContainers = []corev1.Container{ctr("init", app+":1.1")}
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: app + ":1.0"}}}
	ar := review(t, admissionv1.Create, "default", p, nil)
	r := fx.post(t, admission.MutatePath, ar)
	var got corev1.Pod
	patched(t, ar, r, &got)
	if g := got.Spec.Containers[0].Image; g != pinned("1.0") {
		t.Errorf("containers[0] = %s, want %s", g, pinned("1.0"))
	}
	if g := got.Spec.InitContainers[0].Image; g != pinned("1.1") {
		t.Errorf("initContainers[0] = %s, want %s", g, pinned("1.1"))
	}
	if g := got.Spec.EphemeralContainers[0].Image; g != pinned("1.0") {
		t.Errorf("ephemeralContainers[0] = %s, want %s", g, pinned("1.0"))
	}
	// Allowed unsigned: passed through as written.
	if g := got.Spec.Containers[1].Image; g != "nginx:1.27" {
		t.Errorf("containers[1] = %s, want it untouched", g)
	}
	var ops []map[string]any
	if err := json.Unmarshal(r.Patch, &ops); err != nil || len(ops) != 3 {
		t.Fatalf("patch %s: want 3 operations", r.Patch)
	}

	// The validating endpoint: same check, no patch.
	r = fx.post(t, admission.ValidatePath, review(t, admissionv1.Create, "default", p, nil))
	if !r.Allowed || len(r.Patch) > 0 || r.PatchType != nil {
		t.Fatalf("validate: allowed %v, patch %s", r.Allowed, r.Patch)
	}
	// A bare name is NAME:latest, as the kubelet pulls it.
	fx.repo.Sign("latest")
	r = fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app)), nil))
	patched(t, ar, r, &got)
	if want := pinned("latest"); !strings.Contains(string(r.Patch), want) {
		t.Fatalf("patch %s does not pin %s", r.Patch, want)
	}
}

func TestPinnedReferences(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	other := digest.FromString("another manifest")
	for _, tc := range []struct {
		name, image string
		deny        []string
	}{
		{name: "right digest", image: pinned("1.0")},
		{name: "right digest, short name form", image: app + ":1.1@" + testserver.Digest("1.1").String()},
		{name: "digest only, vouched for by a signed tag", image: app + "@" + testserver.Digest("1.0").String()},
		{name: "wrong digest", image: app + ":1.0@" + other.String(), deny: []string{`container "app"`, app + ":1.0@" + other.String(), "pins " + other.String(), "signed as " + testserver.Digest("1.0").String()}},
		{name: "digest of another tag", image: app + ":1.0@" + testserver.Digest("1.1").String(), deny: []string{"pins " + testserver.Digest("1.1").String()}},
		{name: "digest no tag vouches for", image: app + "@" + other.String(), deny: []string{"no signed tag of " + app + " vouches for " + other.String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", tc.image)), nil))
			if tc.deny != nil {
				denied(t, r, tc.deny...)
				return
			}
			if !r.Allowed || len(r.Patch) > 0 {
				t.Fatalf("allowed %v, patch %s; want allowed with no patch", r.Allowed, r.Patch)
			}
		})
	}
}

func TestDenied(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	for _, tc := range []struct {
		name, image string
		want        []string
	}{
		{"unsigned repository under require: signed", unsigned + ":1.0", []string{unsigned + ":1.0 is not signed"}},
		{"unsigned tag of a signed repository", app + ":9.9", []string{app + ":9.9 is not signed"}},
		{"no rule, default deny", "quay.io/someone/tool:1", []string{"no rule matches quay.io/someone/tool and the default is deny"}},
		{"dev image outside dev-* namespaces", "registry.example.com/dev/x:1", []string{"no rule matches registry.example.com/dev/x"}},
		{"not a reference", "Registry.Example.com/UPPER:1", []string{"not an image reference"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One denied image denies the whole pod, signed ones too.
			r := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("ok", app+":1.0"), ctr("bad", tc.image)), nil))
			denied(t, r, append([]string{`container "bad" (spec.containers[1]) image "` + tc.image + `"`}, tc.want...)...)
			if strings.Contains(r.Result.Message, `"ok"`) {
				t.Errorf("message names the allowed container: %s", r.Result.Message)
			}
			r = fx.post(t, admission.ValidatePath, review(t, admissionv1.Create, "default", pod(ctr("bad", tc.image)), nil))
			denied(t, r, tc.want...)
		})
	}
}

func TestResignedTag(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	first := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil))
	if !strings.Contains(string(first.Patch), pinned("1.0")) {
		t.Fatalf("patch %s", first.Patch)
	}
	next := digest.FromString("rebuilt 1.0")
	fx.repo.SignDigest("1.0", next, 999)
	// Within the cache's TTL the verified decision answers...
	r := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil))
	if !strings.Contains(string(r.Patch), pinned("1.0")) {
		t.Fatalf("within the TTL: patch %s", r.Patch)
	}
	// ...after it, the new signature does.
	fx.clock.advance(admission.DefaultCacheTTL + time.Second)
	ar := review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil)
	r = fx.post(t, admission.MutatePath, ar)
	var got corev1.Pod
	patched(t, ar, r, &got)
	if want := app + ":1.0@" + next.String(); got.Spec.Containers[0].Image != want {
		t.Fatalf("image %s, want %s", got.Spec.Containers[0].Image, want)
	}
	// The old pin is now refused.
	denied(t, fx.post(t, admission.ValidatePath, review(t, admissionv1.Create, "default", pod(ctr("app", pinned("1.0"))), nil)), "signed as "+next.String())
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	tmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{ctr("init", "nginx:1.27")},
		Containers:     []corev1.Container{ctr("web", "nginx:1.27"), ctr("app", app+":1.1")},
	}}
	meta := metav1.ObjectMeta{Name: "x"}
	for _, tc := range []struct {
		obj  runtime.Object
		into runtime.Object
		spec func(runtime.Object) *corev1.PodSpec
		path string
	}{
		{&appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Template: tmpl}}, &appsv1.Deployment{},
			func(o runtime.Object) *corev1.PodSpec { return &o.(*appsv1.Deployment).Spec.Template.Spec }, "/spec/template/spec/containers/1/image"},
		{&appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}, ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Template: tmpl}}, &appsv1.ReplicaSet{},
			func(o runtime.Object) *corev1.PodSpec { return &o.(*appsv1.ReplicaSet).Spec.Template.Spec }, "/spec/template/spec/containers/1/image"},
		{&appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Template: tmpl}}, &appsv1.StatefulSet{},
			func(o runtime.Object) *corev1.PodSpec { return &o.(*appsv1.StatefulSet).Spec.Template.Spec }, "/spec/template/spec/containers/1/image"},
		{&appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}, ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Template: tmpl}}, &appsv1.DaemonSet{},
			func(o runtime.Object) *corev1.PodSpec { return &o.(*appsv1.DaemonSet).Spec.Template.Spec }, "/spec/template/spec/containers/1/image"},
		{&batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: meta, Spec: batchv1.JobSpec{Template: tmpl}}, &batchv1.Job{},
			func(o runtime.Object) *corev1.PodSpec { return &o.(*batchv1.Job).Spec.Template.Spec }, "/spec/template/spec/containers/1/image"},
		{&batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: meta, Spec: batchv1.CronJobSpec{Schedule: "* * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}}, &batchv1.CronJob{},
			func(o runtime.Object) *corev1.PodSpec {
				return &o.(*batchv1.CronJob).Spec.JobTemplate.Spec.Template.Spec
			}, "/spec/jobTemplate/spec/template/spec/containers/1/image"},
	} {
		kind := tc.obj.GetObjectKind().GroupVersionKind().Kind
		t.Run(kind, func(t *testing.T) {
			ar := review(t, admissionv1.Create, "default", tc.obj, nil)
			r := fx.post(t, admission.MutatePath, ar)
			want := fmt.Sprintf(`[{"op":"replace","path":%q,"value":%q}]`, tc.path, pinned("1.1"))
			if string(r.Patch) != want {
				t.Fatalf("patch %s, want %s", r.Patch, want)
			}
			patched(t, ar, r, tc.into)
			spec := tc.spec(tc.into)
			if spec.Containers[1].Image != pinned("1.1") || spec.Containers[0].Image != "nginx:1.27" || spec.InitContainers[0].Image != "nginx:1.27" {
				t.Fatalf("patched %s: %+v", kind, spec)
			}
			// An unsigned image in the template denies, naming its field.
			bad := tc.obj.DeepCopyObject()
			tc.spec(bad).InitContainers[0].Image = unsigned + ":2"
			denied(t, fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", bad, nil)), `container "init" (`+strings.ReplaceAll(strings.TrimPrefix(strings.TrimSuffix(tc.path, "/containers/1/image"), "/"), "/", ".")+`.initContainers[0])`, "is not signed")
		})
	}
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	for _, img := range []string{app + ":1.0", unsigned + ":1"} {
		ar := review(t, admissionv1.Create, "default", pod(ctr("app", img)), nil)
		dry := true
		ar.Request.DryRun = &dry
		r := fx.post(t, admission.MutatePath, ar)
		real := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", img)), nil))
		if r.Allowed != real.Allowed || string(r.Patch) != string(real.Patch) {
			t.Fatalf("%s: dry run answered %v %s, a real request %v %s", img, r.Allowed, r.Patch, real.Allowed, real.Patch)
		}
	}
}

func TestNamespaces(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	bad := pod(ctr("app", unsigned+":1"), ctr("signed", app+":1.0"))
	// kube-system is exempt by default: nothing checked, nothing pinned.
	r := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "kube-system", bad, nil))
	if !r.Allowed || len(r.Patch) > 0 {
		t.Fatalf("kube-system: allowed %v, patch %s", r.Allowed, r.Patch)
	}
	denied(t, fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", bad, nil)), "is not signed")
	// A rule limited to dev-* namespaces.
	dev := pod(ctr("app", "registry.example.com/dev/x:1"))
	if r := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "dev-alice", dev, nil)); !r.Allowed || len(r.Patch) > 0 {
		t.Fatalf("dev-alice: allowed %v, patch %s", r.Allowed, r.Patch)
	}
	denied(t, fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "prod", dev, nil)), "no rule matches")
}

func TestUpdateChecksChangedImages(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	// Written before the webhook was installed: not re-checked.
	old := pod(ctr("legacy", unsigned+":1"), ctr("app", pinned("1.0")))
	cur := pod(ctr("legacy", unsigned+":1"), ctr("app", app+":1.1"))
	ar := review(t, admissionv1.Update, "default", cur, old)
	r := fx.post(t, admission.MutatePath, ar)
	want := fmt.Sprintf(`[{"op":"replace","path":"/spec/containers/1/image","value":%q}]`, pinned("1.1"))
	if !r.Allowed || string(r.Patch) != want {
		t.Fatalf("allowed %v, patch %s; want %s", r.Allowed, r.Patch, want)
	}
	// A changed image is checked.
	cur = pod(ctr("legacy", unsigned+":2"), ctr("app", pinned("1.0")))
	denied(t, fx.post(t, admission.MutatePath, review(t, admissionv1.Update, "default", cur, old)), `container "legacy"`, unsigned+":2 is not signed")
	// An ephemeral container added through pods/ephemeralcontainers.
	cur = old.DeepCopy()
	cur.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "quay.io/evil/shell:1"}}}
	ar = review(t, admissionv1.Update, "default", cur, old)
	ar.Request.SubResource = "ephemeralcontainers"
	denied(t, fx.post(t, admission.MutatePath, ar), `container "debug" (spec.ephemeralContainers[0])`, "no rule matches quay.io/evil/shell")
}

func TestTrustServerDown(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0")
	warm := newHook(t, srv, repo)
	cold := newHook(t, srv, repo)
	if r := warm.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil)); !strings.Contains(string(r.Patch), pinned("1.0")) {
		t.Fatalf("warm-up: %v %s", r.Allowed, r.Patch)
	}
	srv.SetDown(true)
	// A warm cache answers with the verified digest...
	r := warm.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil))
	if !r.Allowed || !strings.Contains(string(r.Patch), pinned("1.0")) {
		t.Fatalf("warm cache, server down: %v %s %v", r.Allowed, r.Patch, r.Result)
	}
	// ...a cold one fails closed, saying why.
	denied(t, cold.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil)), "cannot verify "+app+":1.0", srv.URL)
	// Once the cached decision is older than the TTL, the warm one too.
	warm.clock.advance(admission.DefaultCacheTTL)
	denied(t, warm.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil)), "cannot verify")
	srv.SetDown(false)
	if r := cold.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil)); !r.Allowed {
		t.Fatalf("server back: %v", r.Result)
	}
}

// A cached decision never outlives the TUF metadata that vouched, however
// long the TTL.
func TestCacheBoundedByTUFExpiry(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, func(o *admission.Options) { o.CacheTTL = 30 * 24 * time.Hour })
	if r := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil)); !r.Allowed {
		t.Fatal(r.Result)
	}
	fx.srv.SetDown(true)
	fx.clock.advance(23 * time.Hour) // the timestamp lives one day
	if r := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil)); !r.Allowed {
		t.Fatalf("within the timestamp's life: %v", r.Result)
	}
	fx.clock.advance(2 * time.Hour)
	denied(t, fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil)), "cannot verify")
}

func TestStalledServerAnsweredWithinTimeout(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.srv.SetStalled(true)
	body, _ := json.Marshal(review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil))
	start := time.Now()
	// timeoutSeconds: 3 → the API server calls with ?timeout=3s.
	resp, err := fx.hook.Client().Post(fx.hook.URL+admission.MutatePath+"?timeout=3s", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	took := time.Since(start)
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if took >= 3*time.Second {
		t.Fatalf("answered after %s, beyond the 3s timeout", took)
	}
	denied(t, out.Response, "cannot verify")
}

// A burst of reviews of a cold webhook: every one answered, correctly and
// within the timeout, with one trust check shared per image.
func TestBurst(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img := app + ":1.0"
			if i%2 == 1 {
				img = app + ":1.1"
			}
			ar := review(t, admissionv1.Create, "default", pod(ctr("app", img)), nil)
			body, _ := json.Marshal(ar)
			begin := time.Now()
			defer func() {
				if took := time.Since(begin); took >= 5*time.Second {
					errs <- fmt.Errorf("answered after %s, beyond the 5s timeout", took)
				}
			}()
			resp, err := fx.hook.Client().Post(fx.hook.URL+admission.MutatePath+"?timeout=5s", "application/json", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var out admissionv1.AdmissionReview
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				errs <- err
				return
			}
			if out.Response.UID != ar.Request.UID || !out.Response.Allowed || !strings.Contains(string(out.Response.Patch), testserver.Digest(strings.TrimPrefix(img, app+":")).String()) {
				errs <- fmt.Errorf("%s: %+v", img, out.Response)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d concurrent reviews answered in %s", n, time.Since(start))
	// Two images: at most a few misses (one shared check each), the rest hits.
	hits, misses, shared := counter(t, fx.reg, "signet_admission_cache_lookups_total", "hit"), counter(t, fx.reg, "signet_admission_cache_lookups_total", "miss"), counter(t, fx.reg, "signet_admission_cache_lookups_total", "shared")
	if hits+misses+shared != n || misses > 4 {
		t.Errorf("cache: %v hits, %v misses, %v shared for %d reviews of 2 images", hits, misses, shared, n)
	}
}

func TestMetricsCarryNoImageNames(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil))
	fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil))
	fx.post(t, admission.ValidatePath, review(t, admissionv1.Create, "default", pod(ctr("app", unsigned+":1")), nil))
	fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", "nginx")), nil))
	mfs, err := fx.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "example.com") || strings.Contains(l.GetValue(), "nginx") {
					t.Errorf("%s has an image name in label %s=%s", mf.GetName(), l.GetName(), l.GetValue())
				}
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			seen[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	for k, v := range map[string]float64{
		"signet_admission_decisions_total{endpoint=mutate,reason=signed,result=allow}":           2,
		"signet_admission_decisions_total{endpoint=validate,reason=not_signed,result=deny}":      1,
		"signet_admission_decisions_total{endpoint=mutate,reason=unsigned_allowed,result=allow}": 1,
		"signet_admission_reviews_total{endpoint=validate,result=denied}":                        1,
		"signet_admission_reviews_total{endpoint=mutate,result=allowed}":                         3,
		"signet_admission_cache_lookups_total{result=hit}":                                       1,
		"signet_admission_cache_lookups_total{result=miss}":                                      1,
	} {
		if seen[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, seen[k], v, seen)
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestBadReviews(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	post := func(ct, body string) *http.Response {
		resp, err := fx.hook.Client().Post(fx.hook.URL+admission.MutatePath, ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct{ name, ct, body string }{
		{"v1beta1", "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1"}}`},
		{"no request", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`},
		{"not JSON", "application/json", `{`},
		{"not JSON content", "text/plain", `{}`},
	} {
		if resp := post(tc.ct, tc.body); resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s: %s, want a 4xx", tc.name, resp.Status)
		}
	}
	// A kind the webhook does not handle is refused, not waved through.
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}}
	r := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", cm, nil))
	if r.Allowed || !strings.Contains(r.Result.Message, "does not handle v1 ConfigMap") {
		t.Fatalf("ConfigMap: %+v", r.Result)
	}
	// DELETE runs no image.
	ar := review(t, admissionv1.Delete, "default", pod(ctr("app", unsigned+":1")), nil)
	if r := fx.post(t, admission.MutatePath, ar); !r.Allowed {
		t.Fatalf("DELETE denied: %v", r.Result)
	}
}

// The webhook needs a policy.
func TestOptions(t *testing.T) {
	t.Parallel()
	if _, err := admission.New(admission.Options{}); err == nil {
		t.Error("no policy accepted")
	}
	p, err := policy.New(&policy.File{TrustDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admission.New(admission.Options{Policy: p, CacheTTL: -1}); err != nil {
		t.Errorf("cache off: %v", err)
	}
}

// A tag signed by a delegated role: pinned, and its decision cached
// (bounded by that role's expiry too), so a warm webhook answers while the
// server is down.
func TestDelegatedRoleCached(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.repo.Delegate("targets/releases")
	fx.repo.SignAs("targets/releases", "2.0")
	ar := review(t, admissionv1.Create, "default", pod(ctr("app", app+":2.0")), nil)
	r := fx.post(t, admission.MutatePath, ar)
	var got corev1.Pod
	patched(t, ar, r, &got)
	if got.Spec.Containers[0].Image != pinned("2.0") {
		t.Fatalf("image %s, want %s", got.Spec.Containers[0].Image, pinned("2.0"))
	}
	fx.srv.SetDown(true)
	if r := fx.post(t, admission.ValidatePath, review(t, admissionv1.Create, "default", pod(ctr("app", pinned("2.0"))), nil)); !r.Allowed {
		t.Fatalf("warm, server down: %v", r.Result)
	}
	if hits := counter(t, fx.reg, "signet_admission_cache_lookups_total", "hit"); hits != 1 {
		t.Fatalf("%v cache hits, want 1", hits)
	}
}

// The cache holds at most CacheSize decisions, dropping the least
// recently used.
func TestCacheSizeBound(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, func(o *admission.Options) { o.CacheSize = 1 })
	for _, tag := range []string{"1.0", "1.1", "1.0", "1.0"} {
		if r := fx.post(t, admission.MutatePath, review(t, admissionv1.Create, "default", pod(ctr("app", app+":"+tag)), nil)); !r.Allowed {
			t.Fatal(r.Result)
		}
	}
	if hits, misses := counter(t, fx.reg, "signet_admission_cache_lookups_total", "hit"), counter(t, fx.reg, "signet_admission_cache_lookups_total", "miss"); hits != 1 || misses != 3 {
		t.Fatalf("%v hits, %v misses; want 1 and 3 (1.0 evicted by 1.1)", hits, misses)
	}
	mfs, err := fx.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "signet_admission_cache_entries" && mf.GetMetric()[0].GetGauge().GetValue() != 1 {
			t.Fatalf("%v entries, want 1", mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
}
