package datasource_test

// The checks here stand in for Grafana's plugin validator, which cannot be installed on
// our machines: they look at the built plugin directory (datasource/dist, written by
// `go tool mage frontend:build` and the backend build) for what the validator and Grafana's
// plugin loader look at.

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/telltale-dev/telltale/internal/testenv"
)

// platforms are the os/arch pairs whose backend executable must be in dist/.
var platforms = []string{"linux/amd64", "linux/arm64"}

// TestDist checks the real build output. It needs both builds to have run; without dist/
// it is skipped on a developer machine and fails in CI.
func TestDist(t *testing.T) {
	if _, err := os.Stat("dist/plugin.json"); err != nil {
		testenv.Missing(t, "datasource/dist is not built (%v): run `go tool mage frontend:build` and the backend build", err)
	}
	for _, p := range checkDist(os.DirFS("dist"), platforms) {
		t.Error(p)
	}
}

// pluginJSON is the part of plugin.json the checks read.
type pluginJSON struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Backend    bool   `json:"backend"`
	Executable string `json:"executable"`
	Alerting   bool   `json:"alerting"`
	Info       struct {
		Description string `json:"description"`
		Author      struct {
			Name string `json:"name"`
		} `json:"author"`
		Keywords []string `json:"keywords"`
		Logos    struct {
			Small string `json:"small"`
			Large string `json:"large"`
		} `json:"logos"`
		Screenshots []struct {
			Path string `json:"path"`
		} `json:"screenshots"`
		Version string `json:"version"`
		Updated string `json:"updated"`
	} `json:"info"`
	Dependencies struct {
		GrafanaDependency string `json:"grafanaDependency"`
	} `json:"dependencies"`
	Includes []struct {
		Type string `json:"type"`
		Name string `json:"name"`
		Path string `json:"path"`
	} `json:"includes"`
}

var (
	// pluginID is the id shape Grafana accepts: org-name-type, lower case.
	pluginID   = regexp.MustCompile(`^[0-9a-z]+-([0-9a-z]+-)?(app|panel|datasource)$`)
	semver     = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	date       = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	semverCond = regexp.MustCompile(`^(>=|<=|>|<|=|\^|~)?\s*\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?$`)
	// placeholder matches the build-time variables the webpack build replaces.
	placeholder = regexp.MustCompile(`%(VERSION|TODAY|PLUGIN_ID)%`)
	unsafeSVG   = regexp.MustCompile(`(?i)<script|\son[a-z]+\s*=|javascript:|<foreignObject`)
)

// machines maps GOARCH to the ELF machine a Linux executable for it must have.
var machines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
	"arm":   elf.EM_ARM,
	"386":   elf.EM_386,
}

// checkDist returns every problem found in a built plugin directory, sorted.
func checkDist(fsys fs.FS, platforms []string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	raw, err := fs.ReadFile(fsys, "plugin.json")
	if err != nil {
		return []string{fmt.Sprintf("read plugin.json: %v", err)}
	}
	var p pluginJSON
	if err := json.Unmarshal(raw, &p); err != nil {
		return []string{fmt.Sprintf("parse plugin.json: %v", err)}
	}
	problems = append(problems, checkPluginJSON(&p, raw)...)

	// Files plugin.json refers to.
	for _, logo := range []struct{ which, path string }{{"small", p.Info.Logos.Small}, {"large", p.Info.Logos.Large}} {
		if logo.path == "" {
			continue // reported by checkPluginJSON
		}
		problems = append(problems, checkImage(fsys, "info.logos."+logo.which, logo.path)...)
	}
	for i, s := range p.Info.Screenshots {
		problems = append(problems, checkImage(fsys, fmt.Sprintf("info.screenshots[%d]", i), s.Path)...)
	}
	for i, inc := range p.Includes {
		if inc.Type == "" || inc.Name == "" {
			bad("plugin.json: includes[%d] needs a type and a name", i)
		}
		if inc.Type == "dashboard" {
			if inc.Path == "" {
				bad("plugin.json: includes[%d] (dashboard %q) has no path", i, inc.Name)
			} else if b, err := fs.ReadFile(fsys, inc.Path); err != nil {
				bad("plugin.json: includes[%d] (dashboard %q): %v", i, inc.Name, err)
			} else if !json.Valid(b) {
				bad("plugin.json: includes[%d] (dashboard %q): %s is not valid JSON", i, inc.Name, inc.Path)
			}
		}
	}

	// The frontend bundle: an AMD module, as Grafana's loader expects.
	if b, err := fs.ReadFile(fsys, "module.js"); err != nil {
		bad("module.js: %v", err)
	} else if !bytes.Contains(b, []byte("define(")) {
		bad("module.js: not an AMD module (no define call)")
	}

	// Documents the catalogue shows.
	for _, name := range []string{"README.md", "CHANGELOG.md", "LICENSE"} {
		b, err := fs.ReadFile(fsys, name)
		switch {
		case err != nil:
			bad("%s: %v", name, err)
		case len(bytes.TrimSpace(b)) == 0:
			bad("%s is empty", name)
		case placeholder.Match(b):
			bad("%s still holds the build placeholder %s", name, placeholder.Find(b))
		}
	}

	if p.Backend && p.Executable != "" {
		problems = append(problems, checkExecutables(fsys, p.Executable, platforms)...)
	}
	problems = append(problems, checkLeftovers(fsys)...)
	sort.Strings(problems)
	return problems
}

// checkPluginJSON checks plugin.json's own fields.
func checkPluginJSON(p *pluginJSON, raw []byte) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, "plugin.json: "+fmt.Sprintf(format, args...))
	}

	if m := placeholder.Find(raw); m != nil {
		bad("still holds the build placeholder %s", m)
	}
	if !pluginID.MatchString(p.ID) {
		bad("id %q is not of the form <org>-<name>-<type> in lower case", p.ID)
	} else if !strings.HasSuffix(p.ID, "-"+p.Type) {
		bad("id %q does not end with its type %q", p.ID, p.Type)
	}
	if p.Type != "datasource" {
		bad("type is %q, want datasource", p.Type)
	}
	if strings.TrimSpace(p.Name) == "" {
		bad("name is empty")
	}
	if p.Info.Description == "" {
		bad("info.description is empty")
	}
	if p.Info.Author.Name == "" {
		bad("info.author.name is empty")
	}
	if len(p.Info.Keywords) == 0 {
		bad("info.keywords is empty")
	}
	if p.Info.Logos.Small == "" || p.Info.Logos.Large == "" {
		bad("info.logos needs both small and large")
	}
	if !semver.MatchString(p.Info.Version) {
		bad("info.version %q is not a semantic version", p.Info.Version)
	}
	if !date.MatchString(p.Info.Updated) {
		bad("info.updated %q is not a YYYY-MM-DD date", p.Info.Updated)
	}
	if dep := p.Dependencies.GrafanaDependency; dep == "" {
		bad("dependencies.grafanaDependency is empty")
	} else {
		for _, cond := range strings.Fields(dep) {
			if !semverCond.MatchString(cond) {
				bad("dependencies.grafanaDependency %q: %q is not a version condition such as >=12.3.0", dep, cond)
			}
		}
	}
	if p.Backend && !strings.HasPrefix(p.Executable, "gpx_") {
		bad("backend plugin's executable %q must start with gpx_", p.Executable)
	}
	if !p.Backend && p.Executable != "" {
		bad("executable %q set but backend is false", p.Executable)
	}
	if p.Alerting && !p.Backend {
		bad("alerting needs a backend")
	}
	return problems
}

// checkImage checks that an image plugin.json names exists and, for SVG, holds nothing
// that runs.
func checkImage(fsys fs.FS, field, name string) []string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return []string{fmt.Sprintf("plugin.json: %s %q: %v", field, name, err)}
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".svg":
		if !bytes.Contains(b, []byte("<svg")) {
			return []string{fmt.Sprintf("%s: not an SVG image", name)}
		}
		if m := unsafeSVG.Find(b); m != nil {
			return []string{fmt.Sprintf("%s: SVG holds active content %q", name, m)}
		}
	case ".png":
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			return []string{fmt.Sprintf("%s: not a PNG image", name)}
		}
	case ".jpg", ".jpeg", ".gif", ".webp":
	default:
		return []string{fmt.Sprintf("%s: %s is not an image type Grafana shows", name, path.Ext(name))}
	}
	return nil
}

// checkExecutables checks the backend binaries: one per required platform, named
// <executable>_<os>_<arch>[.exe], executable, for the right machine, and built for
// release rather than for a debugger.
func checkExecutables(fsys fs.FS, executable string, platforms []string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return []string{fmt.Sprintf("list dist: %v", err)}
	}
	found := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "gpx_") || strings.HasSuffix(name, ".debug") {
			continue // .debug files are reported by checkLeftovers
		}
		rest, ok := strings.CutPrefix(name, executable+"_")
		if !ok {
			bad("%s: backend executable not named after plugin.json's executable %q", name, executable)
			continue
		}
		goos, goarch, ok := strings.Cut(strings.TrimSuffix(rest, ".exe"), "_")
		if !ok || strings.Contains(goarch, "_") {
			bad("%s: want %s_<os>_<arch>", name, executable)
			continue
		}
		if (goos == "windows") != strings.HasSuffix(name, ".exe") {
			bad("%s: only windows executables end in .exe", name)
		}
		found[goos+"/"+goarch] = true
		info, err := e.Info()
		if err != nil {
			bad("%s: %v", name, err)
			continue
		}
		if goos != "windows" && info.Mode().Perm()&0o111 == 0 {
			bad("%s: not executable (mode %v)", name, info.Mode().Perm())
		}
		if goos == "linux" {
			problems = append(problems, checkELF(fsys, name, goarch)...)
		}
	}
	for _, pl := range platforms {
		if !found[pl] {
			goos, goarch, _ := strings.Cut(pl, "/")
			bad("no backend executable for %s: want %s_%s_%s", pl, executable, goos, goarch)
		}
	}
	return problems
}

// checkELF checks that a Linux executable is an ELF file for goarch without DWARF debug
// sections (the SDK's release build strips them; its debug build keeps them).
func checkELF(fsys fs.FS, name, goarch string) []string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return []string{fmt.Sprintf("%s: not an ELF executable: %v", name, err)}
	}
	var problems []string
	if want, ok := machines[goarch]; !ok {
		problems = append(problems, fmt.Sprintf("%s: unknown architecture %q", name, goarch))
	} else if f.Machine != want {
		problems = append(problems, fmt.Sprintf("%s: built for %v, want %v", name, f.Machine, want))
	}
	if f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil {
		problems = append(problems, fmt.Sprintf("%s: has DWARF debug information: a debug build, not a release build", name))
	}
	return problems
}

// checkLeftovers finds files that must not ship: the SDK's standalone-mode markers, which
// make a later Grafana connect to a debug server instead of starting the plugin, debugger
// binaries, and development trees.
func checkLeftovers(fsys fs.FS) []string {
	var problems []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		switch {
		case name == "standalone.txt" || name == "pid.txt":
			problems = append(problems, fmt.Sprintf("%s: left over from the SDK's standalone debug mode", p))
		case strings.HasSuffix(name, ".debug") || strings.HasPrefix(name, "__debug_bin"):
			problems = append(problems, fmt.Sprintf("%s: debug build left over", p))
		case d.IsDir() && (name == "node_modules" || name == ".git"):
			problems = append(problems, fmt.Sprintf("%s: development directory in the plugin", p))
			return fs.SkipDir
		case strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".ts") || strings.HasSuffix(name, ".tsx"):
			problems = append(problems, fmt.Sprintf("%s: source file in the plugin", p))
		}
		return nil
	})
	if err != nil {
		problems = append(problems, fmt.Sprintf("walk dist: %v", err))
	}
	return problems
}
