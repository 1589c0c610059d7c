package admission_test

import (
	"context"
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/signetdev/signet/admission"
	"github.com/signetdev/signet/policy"
)

// FuzzReview feeds arbitrary objects to a webhook whose policy allows
// nothing: it must never panic, and it may allow only an object that
// decodes as a Pod without a single image to check.
func FuzzReview(f *testing.F) {
	for _, seed := range []string{
		`{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"a","image":"alpine"}]}}`,
		`{"spec":{"initContainers":[{"name":"a","image":"x@sha256:` + "0000000000000000000000000000000000000000000000000000000000000000" + `"}],"ephemeralContainers":[{"name":"e","image":""}]}}`,
		`{"spec":{}}`, `null`, `[]`, `{"spec":{"containers":"no"}}`,
	} {
		f.Add([]byte(seed))
	}
	p, err := policy.New(&policy.File{TrustDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	w, err := admission.New(admission.Options{Policy: p, CacheTTL: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req := &admissionv1.AdmissionRequest{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "default", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}
		resp := w.Review(context.Background(), "mutate", true, req)
		if resp.UID != "u" {
			t.Fatalf("uid %q", resp.UID)
		}
		if !resp.Allowed {
			return
		}
		var pod corev1.Pod
		if err := json.Unmarshal(raw, &pod); err != nil {
			t.Fatalf("allowed an object that does not decode: %v", err)
		}
		if n := len(pod.Spec.Containers) + len(pod.Spec.InitContainers) + len(pod.Spec.EphemeralContainers); n > 0 || len(resp.Patch) > 0 {
			t.Fatalf("allowed a pod with %d images under a deny-all policy (patch %s)", n, resp.Patch)
		}
	})
}
