package datasource_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeELF builds a minimal 64-bit little-endian ELF executable for machine, with the named
// (empty) sections, enough for debug/elf to read what checkELF looks at.
func fakeELF(tb testing.TB, machine elf.Machine, sections ...string) []byte {
	tb.Helper()
	names := []string{"", ".shstrtab"}
	names = append(names, sections...)
	var strtab bytes.Buffer
	offsets := make([]uint32, len(names))
	for i, n := range names {
		offsets[i] = uint32(strtab.Len())
		strtab.WriteString(n)
		strtab.WriteByte(0)
	}
	const ehsize, shentsize = 64, 64
	shoff := uint64(ehsize + strtab.Len())

	var b bytes.Buffer
	hdr := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(machine),
		Version:   uint32(elf.EV_CURRENT),
		Shoff:     shoff,
		Ehsize:    ehsize,
		Shentsize: shentsize,
		Shnum:     uint16(len(names)),
		Shstrndx:  1,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	write := func(v any) {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			tb.Fatalf("write ELF: %v", err)
		}
	}
	write(hdr)
	b.Write(strtab.Bytes())
	for i := range names {
		sh := elf.Section64{Name: offsets[i]}
		switch {
		case i == 1:
			sh.Type = uint32(elf.SHT_STRTAB)
			sh.Off = ehsize
			sh.Size = uint64(strtab.Len())
		case i > 1:
			sh.Type = uint32(elf.SHT_PROGBITS)
		}
		write(sh)
	}
	return b.Bytes()
}

// validPluginJSON is a plugin.json as the build emits it.
func validPluginJSON() map[string]any {
	return map[string]any{
		"type":       "datasource",
		"name":       "Telltale Insights",
		"id":         "telltale-insights-datasource",
		"metrics":    true,
		"alerting":   true,
		"backend":    true,
		"executable": "gpx_telltale_insights",
		"info": map[string]any{
			"description": "KPIs next to infrastructure",
			"author":      map[string]any{"name": "Telltale"},
			"keywords":    []string{"prometheus"},
			"logos":       map[string]any{"small": "img/logo.svg", "large": "img/logo.svg"},
			"version":     "0.1.0",
			"updated":     "2026-11-22",
		},
		"dependencies": map[string]any{"grafanaDependency": ">=12.3.0"},
	}
}

// validDist returns a dist tree that passes every check.
func validDist(tb testing.TB) fstest.MapFS {
	tb.Helper()
	pj, err := json.Marshal(validPluginJSON())
	if err != nil {
		tb.Fatal(err)
	}
	return fstest.MapFS{
		"plugin.json":                       {Data: pj, Mode: 0o644},
		"module.js":                         {Data: []byte(`/* x */define(["react"],(e)=>{})`), Mode: 0o644},
		"README.md":                         {Data: []byte("# Telltale\nVersion 0.1.0\n"), Mode: 0o644},
		"CHANGELOG.md":                      {Data: []byte("# Changelog\n"), Mode: 0o644},
		"LICENSE":                           {Data: []byte("Apache License\n"), Mode: 0o644},
		"img/logo.svg":                      {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"><circle r="1"/></svg>`), Mode: 0o644},
		"gpx_telltale_insights_linux_amd64": {Data: fakeELF(tb, elf.EM_X86_64), Mode: 0o755},
		"gpx_telltale_insights_linux_arm64": {Data: fakeELF(tb, elf.EM_AARCH64), Mode: 0o755},
	}
}

// withPluginJSON returns a change that edits plugin.json.
func withPluginJSON(edit func(p map[string]any)) func(tb testing.TB, d fstest.MapFS) {
	return func(tb testing.TB, d fstest.MapFS) {
		p := validPluginJSON()
		edit(p)
		b, err := json.Marshal(p)
		if err != nil {
			tb.Fatal(err)
		}
		d["plugin.json"] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
}

func info(p map[string]any) map[string]any { return p["info"].(map[string]any) }

func TestCheckDist(t *testing.T) {
	tests := []struct {
		name   string
		change func(tb testing.TB, d fstest.MapFS)
		want   []string
	}{
		{name: "valid"},
		{
			name:   "no plugin.json",
			change: func(_ testing.TB, d fstest.MapFS) { delete(d, "plugin.json") },
			want:   []string{"read plugin.json: open plugin.json: file does not exist"},
		},
		{
			name:   "truncated plugin.json",
			change: func(_ testing.TB, d fstest.MapFS) { d["plugin.json"].Data = d["plugin.json"].Data[:20] },
			want:   []string{"parse plugin.json: unexpected end of JSON input"},
		},
		{
			name: "placeholders not replaced",
			change: withPluginJSON(func(p map[string]any) {
				info(p)["version"] = "%VERSION%"
				info(p)["updated"] = "%TODAY%"
			}),
			want: []string{
				`plugin.json: info.updated "%TODAY%" is not a YYYY-MM-DD date`,
				`plugin.json: info.version "%VERSION%" is not a semantic version`,
				"plugin.json: still holds the build placeholder %TODAY%",
			},
		},
		{
			name:   "bad id",
			change: withPluginJSON(func(p map[string]any) { p["id"] = "Telltale_Insights" }),
			want:   []string{`plugin.json: id "Telltale_Insights" is not of the form <org>-<name>-<type> in lower case`},
		},
		{
			name:   "id of another type",
			change: withPluginJSON(func(p map[string]any) { p["id"] = "telltale-insights-panel" }),
			want:   []string{`plugin.json: id "telltale-insights-panel" does not end with its type "datasource"`},
		},
		{
			name: "missing catalogue fields",
			change: withPluginJSON(func(p map[string]any) {
				delete(info(p), "author")
				delete(info(p), "keywords")
				delete(info(p), "description")
				delete(p, "dependencies")
			}),
			want: []string{
				"plugin.json: dependencies.grafanaDependency is empty",
				"plugin.json: info.author.name is empty",
				"plugin.json: info.description is empty",
				"plugin.json: info.keywords is empty",
			},
		},
		{
			name: "malformed grafanaDependency",
			change: withPluginJSON(func(p map[string]any) {
				p["dependencies"] = map[string]any{"grafanaDependency": "twelve"}
			}),
			want: []string{`plugin.json: dependencies.grafanaDependency "twelve": "twelve" is not a version condition such as >=12.3.0`},
		},
		{
			name:   "alerting without backend",
			change: withPluginJSON(func(p map[string]any) { p["backend"] = false; delete(p, "executable") }),
			want:   []string{"plugin.json: alerting needs a backend"},
		},
		{
			name:   "executable without gpx_ prefix",
			change: withPluginJSON(func(p map[string]any) { p["executable"] = "telltale" }),
			want: []string{
				`gpx_telltale_insights_linux_amd64: backend executable not named after plugin.json's executable "telltale"`,
				`gpx_telltale_insights_linux_arm64: backend executable not named after plugin.json's executable "telltale"`,
				"no backend executable for linux/amd64: want telltale_linux_amd64",
				"no backend executable for linux/arm64: want telltale_linux_arm64",
				`plugin.json: backend plugin's executable "telltale" must start with gpx_`,
			},
		},
		{
			name:   "missing logo",
			change: func(_ testing.TB, d fstest.MapFS) { delete(d, "img/logo.svg") },
			want: []string{
				`plugin.json: info.logos.large "img/logo.svg": open img/logo.svg: file does not exist`,
				`plugin.json: info.logos.small "img/logo.svg": open img/logo.svg: file does not exist`,
			},
		},
		{
			name: "logo with a script",
			change: func(_ testing.TB, d fstest.MapFS) {
				d["img/logo.svg"].Data = []byte(`<svg onload="alert(1)"></svg>`)
			},
			want: []string{
				`img/logo.svg: SVG holds active content " onload="`,
				`img/logo.svg: SVG holds active content " onload="`,
			},
		},
		{
			name: "dashboard include missing",
			change: withPluginJSON(func(p map[string]any) {
				p["includes"] = []any{map[string]any{"type": "dashboard", "name": "Overview", "path": "dashboards/overview.json"}}
			}),
			want: []string{`plugin.json: includes[0] (dashboard "Overview"): open dashboards/overview.json: file does not exist`},
		},
		{
			name:   "no module.js",
			change: func(_ testing.TB, d fstest.MapFS) { delete(d, "module.js") },
			want:   []string{"module.js: open module.js: file does not exist"},
		},
		{
			name:   "module.js not AMD",
			change: func(_ testing.TB, d fstest.MapFS) { d["module.js"].Data = []byte("export const plugin = 1;") },
			want:   []string{"module.js: not an AMD module (no define call)"},
		},
		{
			name: "README missing, LICENSE empty, CHANGELOG with placeholder",
			change: func(_ testing.TB, d fstest.MapFS) {
				delete(d, "README.md")
				d["LICENSE"].Data = []byte("\n")
				d["CHANGELOG.md"].Data = []byte("built %TODAY%")
			},
			want: []string{
				"CHANGELOG.md still holds the build placeholder %TODAY%",
				"LICENSE is empty",
				"README.md: open README.md: file does not exist",
			},
		},
		{
			name:   "arm64 executable missing",
			change: func(_ testing.TB, d fstest.MapFS) { delete(d, "gpx_telltale_insights_linux_arm64") },
			want:   []string{"no backend executable for linux/arm64: want gpx_telltale_insights_linux_arm64"},
		},
		{
			name:   "executable bit missing",
			change: func(_ testing.TB, d fstest.MapFS) { d["gpx_telltale_insights_linux_amd64"].Mode = 0o644 },
			want:   []string{"gpx_telltale_insights_linux_amd64: not executable (mode -rw-r--r--)"},
		},
		{
			name: "arm64 name on an amd64 binary",
			change: func(tb testing.TB, d fstest.MapFS) {
				d["gpx_telltale_insights_linux_arm64"].Data = fakeELF(tb, elf.EM_X86_64)
			},
			want: []string{"gpx_telltale_insights_linux_arm64: built for EM_X86_64, want EM_AARCH64"},
		},
		{
			name: "debug build",
			change: func(tb testing.TB, d fstest.MapFS) {
				d["gpx_telltale_insights_linux_amd64"].Data = fakeELF(tb, elf.EM_X86_64, ".text", ".debug_info")
			},
			want: []string{"gpx_telltale_insights_linux_amd64: has DWARF debug information: a debug build, not a release build"},
		},
		{
			name: "not an ELF file",
			change: func(_ testing.TB, d fstest.MapFS) {
				d["gpx_telltale_insights_linux_amd64"].Data = []byte("#!/bin/sh\n" + strings.Repeat("# a shell script, not a Go binary\n", 4))
			},
			want: []string{"gpx_telltale_insights_linux_amd64: not an ELF executable: bad magic number '[35 33 47 98]' in record at byte 0x0"},
		},
		{
			name: "oddly named executables",
			change: func(tb testing.TB, d fstest.MapFS) {
				d["gpx_telltale_insights_linux"] = &fstest.MapFile{Data: fakeELF(tb, elf.EM_X86_64), Mode: 0o755}
				d["gpx_telltale_insights_linux_amd64.exe"] = &fstest.MapFile{Data: fakeELF(tb, elf.EM_X86_64), Mode: 0o755}
				d["gpx_other_linux_amd64"] = &fstest.MapFile{Data: fakeELF(tb, elf.EM_X86_64), Mode: 0o755}
			},
			want: []string{
				`gpx_other_linux_amd64: backend executable not named after plugin.json's executable "gpx_telltale_insights"`,
				"gpx_telltale_insights_linux: want gpx_telltale_insights_<os>_<arch>",
				"gpx_telltale_insights_linux_amd64.exe: only windows executables end in .exe",
			},
		},
		{
			name: "standalone leftovers",
			change: func(_ testing.TB, d fstest.MapFS) {
				d["standalone.txt"] = &fstest.MapFile{Data: []byte("127.0.0.1:40000"), Mode: 0o644}
				d["pid.txt"] = &fstest.MapFile{Data: []byte("4242"), Mode: 0o644}
				d["gpx_telltale_insights_linux_amd64.debug"] = &fstest.MapFile{Data: []byte{}, Mode: 0o644}
				d["__debug_bin123"] = &fstest.MapFile{Data: []byte{}, Mode: 0o755}
			},
			want: []string{
				"__debug_bin123: debug build left over",
				"gpx_telltale_insights_linux_amd64.debug: debug build left over",
				"pid.txt: left over from the SDK's standalone debug mode",
				"standalone.txt: left over from the SDK's standalone debug mode",
			},
		},
		{
			name: "sources and node_modules",
			change: func(_ testing.TB, d fstest.MapFS) {
				d["src/module.ts"] = &fstest.MapFile{Data: []byte("x"), Mode: 0o644}
				d["node_modules/react/index.js"] = &fstest.MapFile{Data: []byte("x"), Mode: 0o644}
			},
			want: []string{
				"node_modules: development directory in the plugin",
				"src/module.ts: source file in the plugin",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDist(t)
			if tt.change != nil {
				tt.change(t, d)
			}
			got := checkDist(d, platforms)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("checkDist() problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFakeELF keeps the fixture honest: debug/elf must read back what fakeELF wrote.
func TestFakeELF(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(fakeELF(t, elf.EM_AARCH64, ".debug_info")))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != elf.EM_AARCH64 || f.Section(".debug_info") == nil {
		t.Errorf("machine %v, .debug_info %v", f.Machine, f.Section(".debug_info"))
	}
}
