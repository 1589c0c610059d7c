package deploytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// certManagerIssuer and certManagerCertificate are the parts of
// cert-manager's CRDs used here.
type certManagerIssuer struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		SelfSigned *struct{} `json:"selfSigned"`
	} `json:"spec"`
}

type certManagerCertificate struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		SecretName  string   `json:"secretName"`
		DNSNames    []string `json:"dnsNames"`
		Duration    string   `json:"duration"`
		RenewBefore string   `json:"renewBefore"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		IssuerRef struct{ Name, Kind string } `json:"issuerRef"`
	} `json:"spec"`
}

// renderObjects runs kubectl kustomize on dir and decodes every object.
func renderObjects(t *testing.T, dir string) []any {
	t.Helper()
	out, err := exec.Command("kubectl", "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
	}
	var objs []any
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) > 0 {
			objs = append(objs, decode(t, doc))
		}
	}
	return objs
}

// TestKubernetesAdmission renders the admission component alone and as a
// component of an overlay of deploy/kubernetes, decodes every object into
// its Kubernetes type and checks what the webhook's safety rests on.
func TestKubernetesAdmission(t *testing.T) {
	component := filepath.Join(root, "deploy", "kubernetes", "admission")
	alone := renderObjects(t, component)

	overlay := t.TempDir()
	abs, err := filepath.Abs(filepath.Join(root, "deploy", "kubernetes"))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(overlay, abs)
	if err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + rel + "]\ncomponents: [" + rel + "/admission]\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	combined := renderObjects(t, overlay)
	if len(combined) <= len(alone) {
		t.Fatalf("the overlay renders %d objects, the component alone %d", len(combined), len(alone))
	}

	for name, objs := range map[string][]any{"component": alone, "overlay": combined} {
		t.Run(name, func(t *testing.T) { checkAdmission(t, objs) })
	}

	// The README's path without cert-manager: its patches delete the
	// Issuer and Certificate and set caBundle on both webhooks.
	manual := k + `patches:
  - target: {group: cert-manager.io, kind: Issuer}
    patch: '{"$patch": "delete", "apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "signet-admission-selfsigned"}}'
  - target: {group: cert-manager.io, kind: Certificate}
    patch: '{"$patch": "delete", "apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "signet-admission"}}'
  - target: {kind: MutatingWebhookConfiguration|ValidatingWebhookConfiguration, name: signet-admission}
    patch: |-
      - {op: remove, path: /metadata/annotations/cert-manager.io~1inject-ca-from}
      - {op: add, path: /webhooks/0/clientConfig/caBundle, value: QUJD}
`
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(manual), 0o600); err != nil {
		t.Fatal(err)
	}
	bundles := 0
	for _, o := range renderObjects(t, overlay) {
		switch o := o.(type) {
		case *certManagerIssuer, *certManagerCertificate:
			t.Errorf("the manual path keeps %T", o)
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			if string(o.Webhooks[0].ClientConfig.CABundle) == "ABC" && o.Annotations["cert-manager.io/inject-ca-from"] == "" {
				bundles++
			}
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			if string(o.Webhooks[0].ClientConfig.CABundle) == "ABC" && o.Annotations["cert-manager.io/inject-ca-from"] == "" {
				bundles++
			}
		}
	}
	if bundles != 2 {
		t.Errorf("the manual path set caBundle on %d webhook configurations, want 2", bundles)
	}
}

func checkAdmission(t *testing.T, objs []any) {
	var (
		dep      *appsv1.Deployment
		svc      *corev1.Service
		cm       *corev1.ConfigMap
		cert     *certManagerCertificate
		mutating *admissionregistrationv1.MutatingWebhookConfiguration
		validate *admissionregistrationv1.ValidatingWebhookConfiguration
		kinds    = map[string]bool{}
	)
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			if o.Name == "signet-admission" {
				dep = o
			}
		case *corev1.Service:
			if o.Name == "signet-admission" {
				svc = o
			}
		case *corev1.ConfigMap:
			cm = o
		case *certManagerCertificate:
			cert = o
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			mutating = o
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			validate = o
		case *policyv1.PodDisruptionBudget:
			if o.Name == "signet-admission" {
				kinds["PodDisruptionBudget"] = o.Spec.MinAvailable != nil && o.Spec.MinAvailable.IntValue() >= 1
			}
		case *networkingv1.NetworkPolicy:
			if o.Spec.PodSelector.MatchLabels["app"] == "signet-admission" {
				kinds["NetworkPolicy"] = slices.Contains(o.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
			}
		case *corev1.ServiceAccount:
			kinds["ServiceAccount"] = o.Name == "signet-admission" && o.AutomountServiceAccountToken != nil && !*o.AutomountServiceAccountToken
		}
	}
	for _, k := range []string{"PodDisruptionBudget", "NetworkPolicy", "ServiceAccount"} {
		if !kinds[k] {
			t.Errorf("no (or a wrong) %s for signet-admission", k)
		}
	}
	if dep == nil || svc == nil || cm == nil || cert == nil || mutating == nil || validate == nil {
		t.Fatalf("missing objects: deployment %v, service %v, configmap %v, certificate %v, mutating %v, validating %v", dep != nil, svc != nil, cm != nil, cert != nil, mutating != nil, validate != nil)
	}
	ns := dep.Namespace
	if ns == "" {
		t.Fatal("the Deployment has no namespace")
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Error("the webhook Deployment must run 2 replicas")
	}
	checkPod(t, "Deployment signet-admission", dep.Spec.Template.Spec, true)
	if dep.Spec.Template.Spec.ServiceAccountName != "signet-admission" {
		t.Error("the webhook runs under another service account")
	}

	// The policy in the ConfigMap is one signet accepts.
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	text := cm.Data["policy.yaml"]
	var lines []string
	for l := range strings.SplitSeq(text, "\n") {
		if !strings.Contains(l, "ca_file:") { // mounted in the pod only
			lines = append(lines, l)
		}
	}
	if err := os.WriteFile(policyFile, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(binDir, "signet"), "--trust-dir", t.TempDir(), "policy", "check", policyFile, "registry.k8s.io/pause:3.10", "--namespace", "default").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "allow") {
		t.Errorf("signet policy check on the ConfigMap's policy: %v\n%s", err, out)
	}
	// The policy file the pod reads is the ConfigMap's, where it is mounted.
	var policyArg string
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--policy="); ok {
			policyArg = v
		}
	}
	mounted := false
	for _, m := range dep.Spec.Template.Spec.Containers[0].VolumeMounts {
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name && policyArg == m.MountPath+"/policy.yaml" {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("--policy=%s is not the ConfigMap %s's policy.yaml", policyArg, cm.Name)
	}

	// The serving certificate names the Service and is the one the pod
	// mounts.
	wantDNS := svc.Name + "." + ns + ".svc"
	if !slices.Contains(cert.Spec.DNSNames, wantDNS) {
		t.Errorf("the Certificate does not name %s: %v", wantDNS, cert.Spec.DNSNames)
	}
	tlsMounted := false
	for _, v := range dep.Spec.Template.Spec.Volumes {
		tlsMounted = tlsMounted || (v.Secret != nil && v.Secret.SecretName == cert.Spec.SecretName)
	}
	if !tlsMounted {
		t.Errorf("the pod does not mount the Certificate's Secret %s", cert.Spec.SecretName)
	}

	type hook struct {
		kind, name  string
		annotations map[string]string
		failure     *admissionregistrationv1.FailurePolicyType
		sideEffects *admissionregistrationv1.SideEffectClass
		match       *admissionregistrationv1.MatchPolicyType
		versions    []string
		timeout     *int32
		client      admissionregistrationv1.WebhookClientConfig
		nsSel       []string
		rules       []admissionregistrationv1.RuleWithOperations
		path        string
	}
	notIn := func(sel *metav1.LabelSelector) []string {
		var out []string
		if sel == nil {
			return nil
		}
		for _, e := range sel.MatchExpressions {
			if e.Key == "kubernetes.io/metadata.name" && e.Operator == metav1.LabelSelectorOpNotIn {
				out = append(out, e.Values...)
			}
		}
		return out
	}
	var hooks []hook
	for _, w := range mutating.Webhooks {
		hooks = append(hooks, hook{"Mutating", w.Name, mutating.Annotations, w.FailurePolicy, w.SideEffects, w.MatchPolicy, w.AdmissionReviewVersions, w.TimeoutSeconds, w.ClientConfig, notIn(w.NamespaceSelector), w.Rules, "/mutate"})
		if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
			t.Errorf("%s: reinvocationPolicy must be IfNeeded (re-pin after a later webhook changes the pod)", w.Name)
		}
	}
	for _, w := range validate.Webhooks {
		hooks = append(hooks, hook{"Validating", w.Name, validate.Annotations, w.FailurePolicy, w.SideEffects, w.MatchPolicy, w.AdmissionReviewVersions, w.TimeoutSeconds, w.ClientConfig, notIn(w.NamespaceSelector), w.Rules, "/validate"})
	}
	if len(hooks) != 2 {
		t.Fatalf("%d webhooks, want one mutating and one validating", len(hooks))
	}
	reviewTimeout := ""
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--review-timeout="); ok {
			reviewTimeout = v
		}
	}
	for _, h := range hooks {
		where := h.kind + " " + h.name
		if h.annotations["cert-manager.io/inject-ca-from"] != cert.Metadata.Namespace+"/"+cert.Metadata.Name || cert.Metadata.Namespace != ns {
			t.Errorf("%s: inject-ca-from %q, want %s/%s", where, h.annotations["cert-manager.io/inject-ca-from"], ns, cert.Metadata.Name)
		}
		if h.failure == nil || *h.failure != admissionregistrationv1.Fail {
			t.Errorf("%s: failurePolicy must be Fail", where)
		}
		if h.sideEffects == nil || *h.sideEffects != admissionregistrationv1.SideEffectClassNone {
			t.Errorf("%s: sideEffects must be None", where)
		}
		if h.match == nil || *h.match != admissionregistrationv1.Equivalent {
			t.Errorf("%s: matchPolicy must be Equivalent", where)
		}
		if !slices.Equal(h.versions, []string{"v1"}) {
			t.Errorf("%s: admissionReviewVersions %v, want [v1]", where, h.versions)
		}
		if h.timeout == nil || *h.timeout >= 10 || *h.timeout < 2 {
			t.Errorf("%s: timeoutSeconds must be set below the default 10", where)
		} else if d, err := time.ParseDuration(reviewTimeout); err != nil || d >= time.Duration(*h.timeout)*time.Second {
			t.Errorf("%s: --review-timeout=%s is not under timeoutSeconds %d", where, reviewTimeout, *h.timeout)
		}
		if h.client.Service == nil || h.client.Service.Name != svc.Name || h.client.Service.Namespace != ns || h.client.Service.Path == nil || *h.client.Service.Path != h.path {
			t.Errorf("%s: clientConfig %+v, want service %s/%s path %s", where, h.client.Service, ns, svc.Name, h.path)
		}
		if !slices.Contains(h.nsSel, ns) {
			t.Errorf("%s: the namespaceSelector does not exclude the webhook's own namespace %s", where, ns)
		}
		covered := map[string]bool{}
		for _, r := range h.rules {
			if !slices.Contains(r.Operations, admissionregistrationv1.Create) || !slices.Contains(r.Operations, admissionregistrationv1.Update) {
				t.Errorf("%s: rule %v misses CREATE or UPDATE", where, r.Resources)
			}
			for _, res := range r.Resources {
				for _, g := range r.APIGroups {
					covered[g+"/"+res] = true
				}
			}
		}
		for _, want := range []string{"/pods", "/pods/ephemeralcontainers", "apps/deployments", "apps/replicasets", "apps/statefulsets", "apps/daemonsets", "batch/jobs", "batch/cronjobs"} {
			if !covered[want] {
				t.Errorf("%s: the rules do not cover %s", where, want)
			}
		}
	}
}
