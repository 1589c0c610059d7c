package admission

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// image is one container image of an object, with where it sits.
type image struct {
	// container is the container's name; field is where it is listed
	// ("spec.template.spec.initContainers[0]").
	container, field string
	// list is containers, initContainers or ephemeralContainers.
	list string
	// path is the JSON pointer of the image field, for the patch.
	path  string
	image string
}

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

// specPaths are, per kind the webhook handles, the JSON pointer of the
// pod spec and its decoder. The webhook configurations register the same
// kinds (matchPolicy: Equivalent sends other versions converted to these).
var specPaths = map[metav1.GroupVersionKind]struct {
	path   string
	decode func([]byte) (*corev1.PodSpec, error)
}{
	{Version: "v1", Kind: "Pod"}: {"/spec", func(b []byte) (*corev1.PodSpec, error) {
		var o corev1.Pod
		return &o.Spec, json.Unmarshal(b, &o)
	}},
	{Group: "apps", Version: "v1", Kind: "Deployment"}: {"/spec/template/spec", func(b []byte) (*corev1.PodSpec, error) {
		var o appsv1.Deployment
		return &o.Spec.Template.Spec, json.Unmarshal(b, &o)
	}},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"}: {"/spec/template/spec", func(b []byte) (*corev1.PodSpec, error) {
		var o appsv1.ReplicaSet
		return &o.Spec.Template.Spec, json.Unmarshal(b, &o)
	}},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"}: {"/spec/template/spec", func(b []byte) (*corev1.PodSpec, error) {
		var o appsv1.StatefulSet
		return &o.Spec.Template.Spec, json.Unmarshal(b, &o)
	}},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"}: {"/spec/template/spec", func(b []byte) (*corev1.PodSpec, error) {
		var o appsv1.DaemonSet
		return &o.Spec.Template.Spec, json.Unmarshal(b, &o)
	}},
	{Group: "batch", Version: "v1", Kind: "Job"}: {"/spec/template/spec", func(b []byte) (*corev1.PodSpec, error) {
		var o batchv1.Job
		return &o.Spec.Template.Spec, json.Unmarshal(b, &o)
	}},
	{Group: "batch", Version: "v1", Kind: "CronJob"}: {"/spec/jobTemplate/spec/template/spec", func(b []byte) (*corev1.PodSpec, error) {
		var o batchv1.CronJob
		return &o.Spec.JobTemplate.Spec.Template.Spec, json.Unmarshal(b, &o)
	}},
}

// imagesOf decodes an object of kind with the Kubernetes types and lists
// every image of its pod spec. A kind the webhook does not know is an
// error: it was registered for it by mistake, and checking nothing would
// admit it unchecked.
func imagesOf(kind metav1.GroupVersionKind, raw []byte) ([]image, error) {
	sp, ok := specPaths[kind]
	if !ok {
		return nil, fmt.Errorf("signet-admission does not handle %s objects; remove them from the webhook's rules", kindString(kind))
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("the review carries no %s object", kind.Kind)
	}
	spec, err := sp.decode(raw)
	if err != nil {
		return nil, fmt.Errorf("decode the %s: %w", kind.Kind, err)
	}
	field := fieldOf(sp.path)
	var out []image
	add := func(list string, i int, name, img string) {
		out = append(out, image{
			container: name, list: list, image: img,
			field: fmt.Sprintf("%s.%s[%d]", field, list, i),
			path:  fmt.Sprintf("%s/%s/%d/image", sp.path, list, i),
		})
	}
	for i, c := range spec.InitContainers {
		add("initContainers", i, c.Name, c.Image)
	}
	for i, c := range spec.Containers {
		add("containers", i, c.Name, c.Image)
	}
	for i, c := range spec.EphemeralContainers {
		add("ephemeralContainers", i, c.Name, c.Image)
	}
	return out, nil
}

// changed keeps the images of cur that old does not list for the same
// container (same list and name) with the same image.
func changed(cur, old []image) []image {
	was := map[[2]string]string{}
	for _, im := range old {
		was[[2]string{im.list, im.container}] = im.image
	}
	var out []image
	for _, im := range cur {
		if prev, ok := was[[2]string{im.list, im.container}]; ok && prev == im.image {
			continue
		}
		out = append(out, im)
	}
	return out
}

// fieldOf turns "/spec/template/spec" into "spec.template.spec".
func fieldOf(ptr string) string {
	b := []byte(ptr[1:])
	for i := range b {
		if b[i] == '/' {
			b[i] = '.'
		}
	}
	return string(b)
}

func kindString(k metav1.GroupVersionKind) string {
	if k.Group == "" {
		return k.Version + " " + k.Kind
	}
	return k.Group + "/" + k.Version + " " + k.Kind
}
