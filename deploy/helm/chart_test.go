// Package helm_test lints and renders the accessbot Helm chart
// (deploy/helm/accessbot) with Helm's own Go module, then decodes every
// rendered object strictly into its Kubernetes API type (unknown or
// misspelt fields fail), without a cluster or network. It is a Go module
// of its own (deploy/helm/go.mod), so that Helm's and Kubernetes' modules
// are neither compiled for nor mixed into the bot's dependency graph (they
// would raise shared modules such as gorilla/websocket); .ci/run tests it
// separately.
package helm_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "accessbot"

// testValues are what an operator sets at install.
func testValues() map[string]any {
	return map[string]any{
		"secrets": map[string]any{
			"slackAppToken": "xapp-1-A0-1-abc",
			"slackBotToken": "xoxb-1-abc",
			"databaseURL":   "postgres://accessbot:pw@db:5432/accessbot?sslmode=verify-full",
			"env":           map[string]any{"OKTA_API_TOKEN": "00abc"},
		},
	}
}

// rendered is one chart rendering, decoded.
type rendered struct {
	deployment *appsv1.Deployment
	configMap  *corev1.ConfigMap
	secret     *corev1.Secret
	service    *corev1.Service
	account    *corev1.ServiceAccount
	pdb        *policyv1.PodDisruptionBudget
}

// render renders the chart with values as release "accessbot" in
// namespace "access", and strictly decodes every object.
func render(t *testing.T, values map[string]any) (*rendered, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals, err := util.ToRenderValues(ch, values, common.ReleaseOptions{Name: "accessbot", Namespace: "access", IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	r := &rendered{}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range out {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue // NOTES.txt, helpers
		}
		for _, doc := range bytes.Split([]byte(out[name]), []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			var target any
			switch meta.APIVersion + "/" + meta.Kind {
			case "apps/v1/Deployment":
				r.deployment = new(appsv1.Deployment)
				target = r.deployment
			case "v1/ConfigMap":
				r.configMap = new(corev1.ConfigMap)
				target = r.configMap
			case "v1/Secret":
				r.secret = new(corev1.Secret)
				target = r.secret
			case "v1/Service":
				r.service = new(corev1.Service)
				target = r.service
			case "v1/ServiceAccount":
				r.account = new(corev1.ServiceAccount)
				target = r.account
			case "policy/v1/PodDisruptionBudget":
				r.pdb = new(policyv1.PodDisruptionBudget)
				target = r.pdb
			default:
				t.Fatalf("%s: unexpected object %s %s", name, meta.APIVersion, meta.Kind)
			}
			// Strict: a field the API type does not have is an error.
			if err := yaml.UnmarshalStrict(doc, target); err != nil {
				t.Fatalf("%s: not a valid %s: %v\n%s", name, meta.Kind, err, doc)
			}
		}
	}
	return r, nil
}

func TestLint(t *testing.T) {
	l := lint.RunAll(chartDir, testValues(), "access", lint.WithKubeVersion(&common.KubeVersion{Version: "v1.30.0", Major: "1", Minor: "30"}))
	for _, m := range l.Messages {
		// INFO (the icon) is advice; anything above fails.
		if m.Severity > support.InfoSev {
			t.Errorf("helm lint: %s", m)
		}
	}
	if len(l.Messages) > 0 {
		t.Logf("helm lint: %v", l.Messages)
	}
}

func TestRender(t *testing.T) {
	r, err := render(t, testValues())
	if err != nil {
		t.Fatal(err)
	}
	if r.deployment == nil || r.configMap == nil || r.secret == nil || r.service == nil || r.pdb == nil || r.account == nil {
		t.Fatalf("missing objects: %+v", r)
	}
	d := r.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", d.Spec.Replicas)
	}
	pod := d.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.Image != "accessbot:0.1.0" {
		t.Errorf("image %s", c.Image)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "ops" {
			t.Errorf("%s probe: %+v, want GET %s on port ops", name, p, path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	if len(c.Ports) != 1 || c.Ports[0].Name != "ops" || c.Ports[0].ContainerPort != 9090 {
		t.Errorf("ports %+v", c.Ports)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["ACCESSBOT_STORE_DRIVER"] != "postgres" || env["ACCESSBOT_HTTP_LISTEN"] != ":9090" {
		t.Errorf("env %v", env)
	}
	for _, k := range []string{"ACCESSBOT_STORE_PATH", "ACCESSBOT_AUDIT_FILE"} {
		if v, ok := env[k]; !ok || v != "" {
			t.Errorf("%s = %q, %v; want set empty (no override of the runbook)", k, v, ok)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != r.secret.Name {
		t.Errorf("envFrom %+v, want the chart's secret %s", c.EnvFrom, r.secret.Name)
	}
	// Secret keys are the variables the bot reads: no secret in the
	// ConfigMap or the pod spec.
	for _, k := range []string{"ACCESSBOT_SLACK_APP_TOKEN", "ACCESSBOT_SLACK_BOT_TOKEN", "ACCESSBOT_STORE_DSN", "OKTA_API_TOKEN"} {
		if r.secret.StringData[k] == "" {
			t.Errorf("secret lacks %s", k)
		}
	}
	spec := fmt.Sprintf("%+v %+v", d, r.configMap)
	for _, s := range []string{"xoxb-1-abc", "xapp-1-A0-1-abc", "pw@db", "00abc"} {
		if strings.Contains(spec, s) {
			t.Errorf("%q appears outside the Secret", s)
		}
	}
	if !strings.Contains(r.configMap.Data["config.yaml"], "systems:") {
		t.Errorf("config.yaml: %q", r.configMap.Data["config.yaml"])
	}
	// The config volume is the ConfigMap, mounted where args point.
	if pod.Spec.Volumes[0].ConfigMap == nil || pod.Spec.Volumes[0].ConfigMap.Name != r.configMap.Name ||
		c.VolumeMounts[0].MountPath != "/etc/accessbot" || !slices.Contains(c.Args, "/etc/accessbot/config.yaml") {
		t.Errorf("config volume %+v mounts %+v args %v", pod.Spec.Volumes, c.VolumeMounts, c.Args)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || pod.Spec.SecurityContext.RunAsNonRoot == nil || !*pod.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("security context %+v / %+v", sc, pod.Spec.SecurityContext)
	}
	// The PDB and the Service select exactly the Deployment's pods.
	labels := pod.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !matches(d.Spec.Selector.MatchLabels) || !matches(r.pdb.Spec.Selector.MatchLabels) || !matches(r.service.Spec.Selector) {
		t.Errorf("selectors: deployment %v pdb %v service %v; pod labels %v", d.Spec.Selector.MatchLabels, r.pdb.Spec.Selector.MatchLabels, r.service.Spec.Selector, labels)
	}
	if r.pdb.Spec.MaxUnavailable == nil || r.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable %v", r.pdb.Spec.MaxUnavailable)
	}
	if pod.Annotations["checksum/config"] == "" || pod.Annotations["checksum/secret"] == "" {
		t.Errorf("pod annotations %v: want checksums that roll the pods on change", pod.Annotations)
	}
}

func TestRenderExistingSecret(t *testing.T) {
	r, err := render(t, map[string]any{"replicaCount": 5, "secrets": map[string]any{"existingSecret": "accessbot-prod"},
		"podDisruptionBudget": map[string]any{"maxUnavailable": 2}})
	if err != nil {
		t.Fatal(err)
	}
	if r.secret != nil {
		t.Error("a Secret was rendered although existingSecret is set")
	}
	if ref := r.deployment.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef; ref.Name != "accessbot-prod" {
		t.Errorf("envFrom secret %s, want accessbot-prod", ref.Name)
	}
	if *r.deployment.Spec.Replicas != 5 || r.pdb.Spec.MaxUnavailable.IntValue() != 2 {
		t.Errorf("replicas %d, PDB %v", *r.deployment.Spec.Replicas, r.pdb.Spec.MaxUnavailable)
	}
}

func TestRenderRequiresSecrets(t *testing.T) {
	_, err := render(t, map[string]any{"secrets": map[string]any{"slackAppToken": "xapp-1", "slackBotToken": "xoxb-1"}})
	if err == nil || !strings.Contains(err.Error(), "secrets.databaseURL (postgres://…) is required, or set secrets.existingSecret") {
		t.Errorf("render without a database URL: %v", err)
	}
}

// TestChartFiles keeps the chart's files in the places Helm looks.
func TestChartFiles(t *testing.T) {
	for _, f := range []string{"Chart.yaml", "values.yaml", "templates/deployment.yaml", "templates/pdb.yaml"} {
		if m, _ := filepath.Glob(filepath.Join(chartDir, f)); len(m) != 1 {
			t.Errorf("%s missing", f)
		}
	}
}
