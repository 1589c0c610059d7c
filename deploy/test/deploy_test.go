// Package deploytest checks that docker-compose.yml and the Kubernetes
// manifests are real: it loads them with compose-spec's own loader and
// Kubernetes' own types (strict decoding), and checks that every command,
// flag, environment variable, port and probe path they use is one the
// binaries really have (read from the binaries' own --help). It is a
// separate module so that these heavy dependencies stay out of signet's.
package deploytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const root = "../.."

// binary is what a deployment may ask of one of signet's binaries.
type binary struct {
	name      string
	envPrefix string
	flags     map[string]map[string]bool // subcommand ("" for serve) → flag names
	secrets   []*regexp.Regexp           // environment variables read directly
}

var binaries map[string]*binary

// binDir holds the built binaries (signet too, for `signet policy check`).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "signet-deploy-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		b, err := loadBinaries(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binaries = b
		return m.Run()
	}()
	os.Exit(code)
}

var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

func loadBinaries(dir string) (map[string]*binary, error) {
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/signet-server", "./cmd/signet-signer", "./cmd/signet-admission", "./cmd/signet")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build: %v\n%s", err, out)
	}
	out := map[string]*binary{
		"signet-server": {name: "signet-server", envPrefix: "SIGNET_", flags: map[string]map[string]bool{}},
		"signet-signer": {name: "signet-signer", envPrefix: "SIGNET_SIGNER_", flags: map[string]map[string]bool{},
			secrets: []*regexp.Regexp{regexp.MustCompile(`^SIGNET_SIGNER_PASSPHRASE(_[A-Z0-9_]+)?$`), regexp.MustCompile(`^SIGNET_SIGNER_PKCS11_PIN$`)}},
		"signet-admission": {name: "signet-admission", envPrefix: "SIGNET_ADMISSION_", flags: map[string]map[string]bool{}},
	}
	binDir = dir
	subs := map[string][][]string{
		"signet-server":    {nil, {"migrate"}, {"token", "create"}, {"prune"}},
		"signet-signer":    {nil, {"migrate"}, {"certs"}, {"rewrap"}},
		"signet-admission": {nil},
	}
	for name, b := range out {
		for _, sub := range subs[name] {
			cmd := exec.Command(filepath.Join(dir, name), append(slices.Clone(sub), "--help")...)
			help, _ := cmd.CombinedOutput() // --help exits 2 with the usage
			flags := map[string]bool{}
			for _, m := range flagLine.FindAllStringSubmatch(string(help), -1) {
				flags[m[1]] = true
			}
			if len(flags) == 0 {
				return nil, fmt.Errorf("%s %v --help listed no flags:\n%s", name, sub, help)
			}
			b.flags[strings.Join(sub, " ")] = flags
		}
	}
	return out, nil
}

// checkInvocation checks a container's arguments and environment against
// the binary it runs, and returns the ports its --addr flags listen on.
func checkInvocation(t *testing.T, where string, b *binary, args []string, env []string) []string {
	t.Helper()
	sub := ""
	for _, s := range []string{"token create", "migrate", "prune", "certs", "rewrap"} {
		if strings.HasPrefix(strings.Join(args, " "), s) {
			sub = s
			args = args[len(strings.Fields(s)):]
			break
		}
	}
	flags, ok := b.flags[sub]
	if !ok {
		t.Errorf("%s: %s has no subcommand %q", where, b.name, sub)
		return nil
	}
	var ports []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%s: stray argument %q to %s %s", where, a, b.name, sub)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !flags[name] {
			t.Errorf("%s: %s %s has no flag --%s", where, b.name, sub, name)
		}
		if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			value = args[i+1]
			i++
		}
		if name == "addr" || name == "health-addr" {
			_, port, err := net.SplitHostPort(value)
			if err != nil {
				t.Errorf("%s: --%s %q: %v", where, name, value, err)
			}
			ports = append(ports, port)
		}
	}
	for _, e := range env {
		if !b.knowsEnv(e, sub) {
			t.Errorf("%s: %s does not read the environment variable %s", where, b.name, e)
		}
	}
	return ports
}

func (b *binary) knowsEnv(name, sub string) bool {
	for _, re := range b.secrets {
		if re.MatchString(name) {
			return true
		}
	}
	flag, ok := strings.CutPrefix(name, b.envPrefix)
	if !ok {
		return false
	}
	return b.flags[sub][strings.ToLower(strings.ReplaceAll(flag, "_", "-"))]
}

func binaryOf(image string) *binary {
	for name, b := range binaries {
		if strings.Contains(image, name) {
			return b
		}
	}
	return nil
}

func TestCompose(t *testing.T) {
	ctx := context.Background()
	p, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("signet", true) })
	if err != nil {
		t.Fatalf("compose-go: %v", err)
	}
	want := []string{"postgres", "certs", "token", "migrate-server", "migrate-signer", "signet-signer", "signet-server"}
	for _, name := range want {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no service %s", name)
		}
	}
	for name, svc := range p.Services {
		b := binaryOf(svc.Image)
		if b == nil {
			continue
		}
		var env []string
		for k := range svc.Environment {
			env = append(env, k)
		}
		listens := checkInvocation(t, "compose service "+name, b, svc.Command, env)
		for _, port := range svc.Ports {
			if target := fmt.Sprint(port.Target); !slices.Contains(listens, target) {
				t.Errorf("compose service %s publishes port %s, which it does not listen on (%v)", name, target, listens)
			}
		}
	}
	if srv, ok := p.Services["signet-server"]; !ok || len(srv.Ports) != 1 || srv.Ports[0].Published != "4443" {
		t.Errorf("the server is not on port 4443 of the host")
	}
	for _, name := range []string{"signet-server", "signet-signer"} {
		if !p.Services[name].ReadOnly {
			t.Errorf("compose service %s must have a read-only root filesystem", name)
		}
	}
	// Without SIGNET_DEMO the signer gets the placeholder passphrase and
	// no --demo, so it refuses to start (cmd/signet-signer tests that).
	sgn := p.Services["signet-signer"].Environment
	if pass := sgn["SIGNET_SIGNER_PASSPHRASE"]; pass == nil || *pass != "change this passphrase" {
		t.Errorf("compose signer passphrase default: %v", pass)
	}
	if demo := sgn["SIGNET_SIGNER_DEMO"]; demo == nil || *demo != "false" {
		t.Errorf("compose signer demo mode defaults to %v, want false", demo)
	}
}

// decode strictly into a Kubernetes type chosen by kind.
func decode(t *testing.T, doc []byte) any {
	t.Helper()
	var meta struct{ Kind string }
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Fatal(err)
	}
	var obj any
	switch meta.Kind {
	case "Namespace":
		obj = &corev1.Namespace{}
	case "Secret":
		obj = &corev1.Secret{}
	case "Service":
		obj = &corev1.Service{}
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "Job":
		obj = &batchv1.Job{}
	case "CronJob":
		obj = &batchv1.CronJob{}
	case "PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "HorizontalPodAutoscaler":
		obj = &autoscalingv2.HorizontalPodAutoscaler{}
	case "NetworkPolicy":
		obj = &networkingv1.NetworkPolicy{}
	case "ServiceMonitor":
		obj = &serviceMonitor{}
	case "ConfigMap":
		obj = &corev1.ConfigMap{}
	case "ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "MutatingWebhookConfiguration":
		obj = &admissionregistrationv1.MutatingWebhookConfiguration{}
	case "ValidatingWebhookConfiguration":
		obj = &admissionregistrationv1.ValidatingWebhookConfiguration{}
	case "Issuer":
		obj = &certManagerIssuer{}
	case "Certificate":
		obj = &certManagerCertificate{}
	default:
		t.Fatalf("unexpected kind %q", meta.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: %v", meta.Kind, err)
	}
	return obj
}

// serviceMonitor is the part of the Prometheus operator's CRD used here.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port      string `json:"port"`
			Path      string `json:"path"`
			Scheme    string `json:"scheme"`
			Interval  string `json:"interval"`
			TLSConfig struct {
				ServerName string `json:"serverName"`
				CA         struct {
					Secret struct{ Name, Key string } `json:"secret"`
				} `json:"ca"`
			} `json:"tlsConfig"`
		} `json:"endpoints"`
	} `json:"spec"`
}

func checkPod(t *testing.T, where string, spec corev1.PodSpec, needProbes bool) {
	t.Helper()
	for _, c := range spec.Containers {
		b := binaryOf(c.Image)
		if b == nil {
			t.Errorf("%s: container %s runs an unknown image %s", where, c.Name, c.Image)
			continue
		}
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name)
		}
		listens := checkInvocation(t, where, b, append(slices.Clone(c.Command), c.Args...), env)
		named := map[string]string{}
		for _, p := range c.Ports {
			port := fmt.Sprint(p.ContainerPort)
			named[p.Name] = port
			if !slices.Contains(listens, port) {
				t.Errorf("%s: container port %s is not one %s listens on (%v)", where, port, b.name, listens)
			}
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: container %s must have a read-only root filesystem and no privilege escalation", where, c.Name)
		}
		if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod must run as non-root", where)
		}
		if !needProbes {
			continue
		}
		for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", where, kind)
				continue
			}
			if want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[kind]; p.HTTPGet.Path != want {
				t.Errorf("%s: %s probe on %s, want %s", where, kind, p.HTTPGet.Path, want)
			}
			if _, ok := named[p.HTTPGet.Port.String()]; !ok && !slices.Contains(listens, p.HTTPGet.Port.String()) {
				t.Errorf("%s: %s probe port %s is not a container port", where, kind, p.HTTPGet.Port.String())
			}
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: no resource requests", where)
		}
	}
}

// render runs kubectl kustomize on a directory of deploy/.
func render(t *testing.T, dir string) []byte {
	t.Helper()
	out, err := exec.Command("kubectl", "kustomize", filepath.Join(root, "deploy", dir)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	return out
}

// flagSecret returns the Secret mounted where a container's --name flag
// points.
func flagSecret(spec corev1.PodSpec, c corev1.Container, name string) string {
	var path string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			path = v
		}
	}
	volumes := map[string]string{}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			volumes[v.Name] = v.Secret.SecretName
		}
	}
	for _, m := range c.VolumeMounts {
		if path != "" && strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return volumes[m.Name]
		}
	}
	return ""
}

func TestKubernetes(t *testing.T) {
	out := render(t, "kubernetes")
	kinds := map[string]int{}
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		switch o := decode(t, doc).(type) {
		case *appsv1.Deployment:
			kinds["Deployment/"+o.Name]++
			checkPod(t, "Deployment "+o.Name, o.Spec.Template.Spec, true)
			if o.Name == "signet-server" && (o.Spec.Replicas == nil || *o.Spec.Replicas != 3) {
				t.Error("the server Deployment must run 3 replicas")
			}
			if o.Name == "signet-server" {
				// The public HTTPS certificate and the client certificate
				// towards the signer live in separate Secrets.
				spec := o.Spec.Template.Spec
				c := spec.Containers[0]
				https, client, ca := flagSecret(spec, c, "tls-cert"), flagSecret(spec, c, "signer-cert"), flagSecret(spec, c, "signer-ca")
				if https == "" || client == "" || https == client || ca != client || flagSecret(spec, c, "signer-key") != client || flagSecret(spec, c, "tls-key") != https {
					t.Errorf("server certificates: HTTPS from %q, signer client from %q, signer CA from %q", https, client, ca)
				}
			}
		case *batchv1.Job:
			kinds["Job"]++
			checkPod(t, "Job "+o.Name, o.Spec.Template.Spec, false)
		case *batchv1.CronJob:
			kinds["CronJob"]++
			checkPod(t, "CronJob "+o.Name, o.Spec.JobTemplate.Spec.Template.Spec, false)
			if args := o.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args; len(args) == 0 || args[0] != "prune" {
				t.Errorf("CronJob %s runs %v", o.Name, args)
			}
		case *networkingv1.NetworkPolicy:
			kinds["NetworkPolicy"]++
			if o.Spec.PodSelector.MatchLabels["app"] != "signet-signer" {
				t.Error("the NetworkPolicy must select the signer")
			}
		case *serviceMonitor:
			kinds["ServiceMonitor"]++
			for _, ep := range o.Spec.Endpoints {
				if ep.Path != "/metrics" {
					t.Errorf("ServiceMonitor scrapes %s", ep.Path)
				}
			}
		case *corev1.Service:
			kinds["Service"]++
		case *corev1.Secret:
			kinds["Secret"]++
		case *policyv1.PodDisruptionBudget:
			kinds["PodDisruptionBudget"]++
		case *autoscalingv2.HorizontalPodAutoscaler:
			kinds["HorizontalPodAutoscaler"]++
		}
	}
	if kinds["ServiceMonitor"] != 0 {
		t.Error("the base holds a ServiceMonitor: it needs the Prometheus Operator's CRD and belongs in components/monitoring")
	}
	for _, k := range []string{"Deployment/signet-server", "Deployment/signet-signer", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "Secret", "Job", "CronJob"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the rendered manifests", k)
		}
	}
	if kinds["Job"] != 2 {
		t.Errorf("%d migrate Jobs, want 2", kinds["Job"])
	}
}

// TestMonitoringComponent: the optional component adds ServiceMonitors for
// the server and the signer, each selecting a Service that has the port it
// scrapes.
func TestMonitoringComponent(t *testing.T) {
	out := render(t, "kubernetes-monitoring")
	services := map[string]*corev1.Service{}
	var monitors []*serviceMonitor
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		switch o := decode(t, doc).(type) {
		case *corev1.Service:
			services[o.Name] = o
		case *serviceMonitor:
			monitors = append(monitors, o)
		}
	}
	scraped := map[string]bool{}
	for _, m := range monitors {
		for _, svc := range services {
			if svc.Labels["app"] == "" || svc.Labels["app"] != m.Spec.Selector.MatchLabels["app"] {
				continue
			}
			for _, ep := range m.Spec.Endpoints {
				found := false
				for _, p := range svc.Spec.Ports {
					found = found || p.Name == ep.Port
				}
				if !found || ep.Path != "/metrics" {
					t.Errorf("ServiceMonitor %s scrapes port %q path %s, which Service %s does not have", m.Metadata.Name, ep.Port, ep.Path, svc.Name)
				}
				if svc.Name == "signet-signer" && ep.Port == "mtls" {
					t.Error("the signer's mutual-TLS port cannot be scraped")
				}
			}
			scraped[svc.Name] = true
		}
	}
	if !scraped["signet-server"] || !scraped["signet-signer"] {
		t.Fatalf("scraped services: %v", scraped)
	}
}

// TestDockerignore: the build context leaves out the repository's history,
// build outputs and data, and keeps what the Dockerfiles build from.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	// ignored applies the patterns as Docker does for these simple cases:
	// the last matching pattern wins, "!" re-includes, a directory
	// pattern covers what is below it.
	ignored := func(path string) bool {
		out := false
		for _, p := range patterns {
			neg := strings.HasPrefix(p, "!")
			p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
			for prefix := path; prefix != "."; prefix = filepath.Dir(prefix) {
				m, _ := filepath.Match(p, prefix)
				if !m && strings.HasPrefix(p, "**/") {
					m, _ = filepath.Match(strings.TrimPrefix(p, "**/"), filepath.Base(prefix))
				}
				if m {
					out = !neg
					break
				}
			}
		}
		return out
	}
	for _, p := range []string{".git/config", "bin/signet", "signet-data/signet.db", "bench/results/latest.json", "client/client.test", "deploy/test/deploy_test.go"} {
		if !ignored(p) {
			t.Errorf("%s is sent to the build", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/signet-server/main.go", "server/server.go", "signer/signer.go", "internal/cli/flags.go", "migrations/server/postgres/00001_init.sql", "client/client.go", "README.md"} {
		if ignored(p) {
			t.Errorf("%s is left out of the build", p)
		}
	}
}

// TestSampleConfig has signet-server read the sample configuration.
func TestSampleConfig(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/signet-server")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(dir, "signet-server"), "config", "--config", filepath.Join(root, "deploy", "signet-server.sample.yaml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `auth: "token"`) {
		t.Fatalf("signet-server config: %v\n%s", err, out)
	}
}
