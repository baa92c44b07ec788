package release

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sjson "sigs.k8s.io/json"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/telltale-dev/telltale/internal/testenv"
)

// manifests is the Kubernetes manifest file shipped.
var manifests = filepath.Join(root, "packaging", "kubernetes", "telltale.yaml")

// decoded holds the manifest's objects by kind.
type decoded struct {
	daemonSets   []appsv1.DaemonSet
	statefulSets []appsv1.StatefulSet
	services     []corev1.Service
	configMaps   []corev1.ConfigMap
}

// decodeManifests decodes every document of the manifest file strictly
// into the official Kubernetes API types: a field those types do not have
// (a typo, a wrong case, a wrong level) fails.
func decodeManifests(t *testing.T) decoded {
	t.Helper()
	b, err := os.ReadFile(manifests)
	if err != nil {
		t.Fatal(err)
	}
	var out decoded
	for i, doc := range bytes.Split(b, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		if err := k8syaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		// As the API server decodes: field names match case for
		// case, and an unknown or repeated field is an error.
		strict := func(v any) {
			js, err := k8syaml.YAMLToJSON(doc)
			if err != nil {
				t.Fatalf("document %d: %v", i, err)
			}
			strictErrs, err := k8sjson.UnmarshalStrict(js, v, k8sjson.DisallowDuplicateFields, k8sjson.DisallowUnknownFields)
			if err = errors.Join(append(strictErrs, err)...); err != nil {
				t.Errorf("document %d (%s %s): %v", i, meta.APIVersion, meta.Kind, err)
			}
		}
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 DaemonSet":
			appendDecoded(&out.daemonSets, strict)
		case "apps/v1 StatefulSet":
			appendDecoded(&out.statefulSets, strict)
		case "v1 Service":
			appendDecoded(&out.services, strict)
		case "v1 ConfigMap":
			appendDecoded(&out.configMaps, strict)
		default:
			t.Errorf("document %d: unexpected %s %s", i, meta.APIVersion, meta.Kind)
		}
	}
	return out
}

// appendDecoded decodes a document into a new T and appends it to list.
func appendDecoded[T any](list *[]T, decode func(any)) {
	var o T
	decode(&o)
	*list = append(*list, o)
}

// argValue is the value of --name=value in args, false when absent.
func argValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TestKubernetesManifests: the manifests decode strictly, the exporter sees
// the host's processes through the host's /proc, the detector's replicas
// each take their shard from the pod's ordinal, every workload has a
// Service on its metrics port, and the scrape configuration is one
// promtool accepts, keeping the detector's labels.
func TestKubernetesManifests(t *testing.T) {
	m := decodeManifests(t)
	if len(m.daemonSets) != 1 || len(m.statefulSets) != 1 || len(m.configMaps) != 1 {
		t.Fatalf("want one DaemonSet, one StatefulSet and one ConfigMap; have %d, %d, %d", len(m.daemonSets), len(m.statefulSets), len(m.configMaps))
	}

	ds := m.daemonSets[0]
	spec := ds.Spec.Template.Spec
	if !spec.HostPID {
		t.Errorf("exporter DaemonSet without hostPID: it would see only its own pod's processes")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("exporter pod has %d containers, want 1", len(spec.Containers))
	}
	ex := spec.Containers[0]
	procfs, ok := argValue(ex.Args, "path.procfs")
	if !ok {
		t.Errorf("exporter args %v lack --path.procfs", ex.Args)
	}
	mounted := false
	for _, vm := range ex.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.HostPath != nil && v.HostPath.Path == "/proc" && vm.MountPath == procfs && vm.ReadOnly {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("the host's /proc is not mounted read-only at --path.procfs=%s", procfs)
	}
	if sc := ex.SecurityContext; sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") ||
		!slices.Contains(sc.Capabilities.Add, "SYS_PTRACE") || sc.Privileged != nil && *sc.Privileged {
		t.Errorf("exporter security context %+v: want every capability dropped but SYS_PTRACE and its like, not privileged", ex.SecurityContext)
	}

	ss := m.statefulSets[0]
	if ss.Spec.Replicas == nil {
		t.Fatalf("detector StatefulSet without replicas")
	}
	det := ss.Spec.Template.Spec.Containers[0]
	count, ok := argValue(det.Args, "shard.count")
	if n, err := strconv.Atoi(count); !ok || err != nil || int32(n) != *ss.Spec.Replicas {
		t.Errorf("detector --shard.count=%q, want the StatefulSet's replicas, %d", count, *ss.Spec.Replicas)
	}
	index, _ := argValue(det.Args, "shard.index")
	env, isEnv := strings.CutPrefix(index, "$(")
	env = strings.TrimSuffix(env, ")")
	fromOrdinal := false
	for _, e := range det.Env {
		if isEnv && e.Name == env && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.labels['apps.kubernetes.io/pod-index']" {
			fromOrdinal = true
		}
	}
	if !fromOrdinal {
		t.Errorf("detector --shard.index=%q does not come from the pod's ordinal (the apps.kubernetes.io/pod-index label)", index)
	}
	// The root file system is read-only: the checkpoint needs a volume.
	storage, ok := argValue(det.Args, "storage.path")
	writable := false
	for _, vm := range det.VolumeMounts {
		for _, v := range ss.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && vm.MountPath == storage && !vm.ReadOnly {
				writable = true
			}
		}
		if slices.ContainsFunc(ss.Spec.VolumeClaimTemplates, func(c corev1.PersistentVolumeClaim) bool { return c.Name == vm.Name }) && vm.MountPath == storage {
			writable = true
		}
	}
	if !ok || !writable {
		t.Errorf("detector --storage.path=%q is not a writable volume of the pod (%v)", storage, det.VolumeMounts)
	}
	if !slices.ContainsFunc(m.services, func(s corev1.Service) bool { return s.Name == ss.Spec.ServiceName }) {
		t.Errorf("no Service %q for the StatefulSet's serviceName", ss.Spec.ServiceName)
	}

	// Each workload's Service selects its pods and serves its metrics port.
	for _, w := range []struct {
		labels map[string]string
		port   corev1.ContainerPort
	}{{ds.Spec.Template.Labels, ex.Ports[0]}, {ss.Spec.Template.Labels, det.Ports[0]}} {
		found := slices.ContainsFunc(m.services, func(s corev1.Service) bool {
			for k, v := range s.Spec.Selector {
				if w.labels[k] != v {
					return false
				}
			}
			return len(s.Spec.Selector) > 0 && slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool {
				return p.Port == w.port.ContainerPort && p.TargetPort.String() == w.port.Name
			})
		})
		if !found {
			t.Errorf("no Service selects pods labelled %v on port %s (%d)", w.labels, w.port.Name, w.port.ContainerPort)
		}
	}
	for _, c := range []corev1.Container{ex, det} {
		if addr, _ := argValue(c.Args, "web.listen-address"); addr != fmt.Sprintf(":%d", c.Ports[0].ContainerPort) {
			t.Errorf("%s listens at %q but declares port %d", c.Name, addr, c.Ports[0].ContainerPort)
		}
	}

	// The scrape configuration.
	prom, ok := m.configMaps[0].Data["prometheus.yml"]
	if !ok {
		t.Fatalf("the ConfigMap has no prometheus.yml")
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName     string `yaml:"job_name"`
			HonorLabels bool   `yaml:"honor_labels"`
			DNS         []struct {
				Names []string `yaml:"names"`
				Port  int32    `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(prom), &cfg); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]bool{}
	ports := map[string]int32{ds.Name: ex.Ports[0].ContainerPort, ss.Name: det.Ports[0].ContainerPort}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = sc.HonorLabels
		for _, d := range sc.DNS {
			// The job finds its pods through the Service of its name.
			if d.Port != ports[sc.JobName] || len(d.Names) == 0 || !strings.HasPrefix(d.Names[0], sc.JobName+".") {
				t.Errorf("scrape job %s looks up %v port %d; want its Service's name and port %d", sc.JobName, d.Names, d.Port, ports[sc.JobName])
			}
		}
	}
	if honor, ok := jobs[ss.Name]; !ok || !honor {
		t.Errorf("scrape job %s: present %v, honor_labels %v; the detector's series keep the labels of what they score", ss.Name, ok, honor)
	}
	if _, ok := jobs[ds.Name]; !ok {
		t.Errorf("no scrape job for %s", ds.Name)
	}
	promtool := testenv.Binary(t, "promtool", "TELLTALE_PROMTOOL")
	p := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(p, []byte(prom), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", p).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}
