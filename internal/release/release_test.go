package release

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"debug/elf"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/telltale-dev/telltale/internal/proctest"
	"github.com/telltale-dev/telltale/internal/testenv"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// root is the module's root, where go build runs.
const root = "../.."

// debianVersion is Debian policy's form of a version: an upstream part
// that starts with a digit.
var debianVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

func TestVersionOf(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":             "1.2.3",
		"v1.2.3-4-gabc1234":  "1.2.3-4-gabc1234",
		"v0.1.0-dirty":       "0.1.0-dirty",
		"2d3fe76":            "0.0.0~git2d3fe76",
		"2d3fe76-dirty":      "0.0.0~git2d3fe76.dirty",
		"dev":                "0.0.0~gitdev",
		"  v2.0.0\n":         "2.0.0",
		"release_candidate1": "0.0.0~gitrelease.candidate1",
	} {
		if got := VersionOf(in); got != want {
			t.Errorf("VersionOf(%q) = %q, want %q", in, got, want)
		}
		if got := VersionOf(in); !debianVersion.MatchString(got) {
			t.Errorf("VersionOf(%q) = %q is no Debian version", in, got)
		}
	}
}

// exporter returns the exporter command.
func exporter(t *testing.T) Command {
	t.Helper()
	i := slices.IndexFunc(Commands, func(c Command) bool { return c.Dir == "./exporter" })
	if i < 0 {
		t.Fatal("no exporter among the commands")
	}
	return Commands[i]
}

// buildHost builds c for this machine's architecture, stamped.
func buildHost(t *testing.T, c Command, s Stamp) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the release is for Linux")
	}
	bin := filepath.Join(t.TempDir(), c.Name)
	if err := Build(root, c, runtime.GOARCH, s, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestTarballRuns builds the exporter as a release does, packs it in the
// Prometheus layout, unpacks it, checks the binary is static, and runs it
// from there: it says its version and serves /metrics.
func TestTarballRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the exporter")
	}
	c := exporter(t)
	stamp := Stamp{Version: "1.2.3", Revision: "abc1234", Branch: "main"}
	bin := buildHost(t, c, stamp)
	out := t.TempDir()
	tgz, err := Tarball(out, c, stamp.Version, runtime.GOARCH, bin, filepath.Join(root, "LICENSE"), filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	top := "telltale-exporter-1.2.3.linux-" + runtime.GOARCH
	if filepath.Base(tgz) != top+".tar.gz" {
		t.Errorf("tarball %s, want %s.tar.gz", filepath.Base(tgz), top)
	}
	dir := t.TempDir()
	names := untar(t, tgz, dir)
	want := []string{top + "/", top + "/LICENSE", top + "/README.md", top + "/telltale-exporter"}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("tarball holds %v, want %v", names, want)
	}
	unpacked := filepath.Join(dir, top, c.Name)
	f, err := elf.Open(unpacked)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a dynamic loader: not static", unpacked)
		}
	}
	f.Close()
	v, err := exec.Command(unpacked, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(v), "version 1.2.3") || !strings.Contains(string(v), "revision: abc1234") {
		t.Errorf("%s --version: %v\n%s", unpacked, err, v)
	}
	addr := testenv.FreeAddr(t)
	p := proctest.Start(t, "", unpacked, "--web.listen-address="+addr)
	body := metrics(t, "http://"+addr+"/metrics", p)
	if !strings.Contains(body, `version="1.2.3"`) || !strings.Contains(body, schema.ServicePrefix) {
		t.Errorf("/metrics of the unpacked exporter lacks its version or its services:\n%.2000s", body)
	}
}

// untar unpacks a .tar.gz into dir and returns the names it held.
func untar(t *testing.T, path, dir string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
}

// metrics waits for p to answer at url and returns the body.
func metrics(t *testing.T, url string, p *proctest.Process) string {
	t.Helper()
	proctest.WaitHTTP(t, url, 30*time.Second, p)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPluginZip: every file of the built plugin sits under a directory
// named for the plugin, as Grafana's plugin installer expects.
func TestPluginZip(t *testing.T) {
	dist := t.TempDir()
	files := map[string]string{
		"plugin.json":                         `{"id":"telltale-insights-datasource"}`,
		"module.js":                           "define([],function(){})",
		"gpx_telltale_insights_linux_amd64":   "\x7fELF",
		"img/logo.svg":                        "<svg/>",
		"dashboards/telltale-services.json":   "{}",
		"provisioning/datasources/telltale.y": "apiVersion: 1",
	}
	for name, body := range files {
		p := filepath.Join(dist, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dist, "gpx_telltale_insights_linux_amd64"), 0o755)
	path, err := PluginZip(t.TempDir(), dist, "telltale-insights-datasource", "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "telltale-insights-datasource-0.1.0.zip" {
		t.Errorf("zip named %s", filepath.Base(path))
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	got := map[string]string{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		got[f.Name] = string(b)
		if strings.HasPrefix(filepath.Base(f.Name), "gpx_") && f.Mode()&0o111 == 0 {
			t.Errorf("%s lost its executable bit (%v)", f.Name, f.Mode())
		}
	}
	for name, body := range files {
		if got["telltale-insights-datasource/"+name] != body {
			t.Errorf("zip entry telltale-insights-datasource/%s = %q, want %q", name, got["telltale-insights-datasource/"+name], body)
		}
	}
	if len(got) != len(files) {
		t.Errorf("zip holds %d files, want %d: %v", len(got), len(files), got)
	}
}

// TestSums: sha256sum -c accepts the sums file.
func TestSums(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i, body := range []string{"one", "two", ""} {
		p := filepath.Join(dir, string(rune('c'-i))+".tar.gz")
		os.WriteFile(p, []byte(body), 0o644)
		paths = append(paths, p)
	}
	sums, err := Sums(dir, paths)
	if err != nil {
		t.Fatal(err)
	}
	tool := testenv.Binary(t, "sha256sum", "")
	cmd := exec.Command(tool, "-c", filepath.Base(sums))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != 3 {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
	os.WriteFile(paths[0], []byte("changed"), 0o644)
	cmd = exec.Command(tool, "-c", filepath.Base(sums))
	cmd.Dir = dir
	if err := cmd.Run(); err == nil {
		t.Errorf("sha256sum -c passed a changed file")
	}
}
