package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		check   func(*testing.T, *fileConfig)
	}{
		{
			name: "full",
			in: `
remote_read:
  url: https://mimir.example:8080/prometheus/api/v1/read
  timeout: 45s
  headers:
    X-Scope-OrgID: team-a
  basic_auth:
    username: telltale
    password: secret
selectors:
  - 'http_requests_total{job="api"}'
  - '{__name__=~"node_cpu_seconds_total"}'
kpis: false
`,
			check: func(t *testing.T, c *fileConfig) {
				if c.RemoteRead.URL != "https://mimir.example:8080/prometheus/api/v1/read" || c.RemoteRead.Headers["X-Scope-OrgID"] != "team-a" {
					t.Errorf("remote_read = %+v", c.RemoteRead)
				}
				if c.RemoteRead.HTTPClientConfig.BasicAuth == nil || c.RemoteRead.HTTPClientConfig.BasicAuth.Username != "telltale" {
					t.Errorf("basic auth not read: %+v", c.RemoteRead.HTTPClientConfig)
				}
				if len(c.Selectors) != 2 || c.KPIs == nil || *c.KPIs {
					t.Errorf("selectors %v, kpis %v", c.Selectors, c.KPIs)
				}
			},
		},
		{
			name:  "empty",
			in:    ``,
			check: func(t *testing.T, c *fileConfig) { cmpConfig(t, &fileConfig{}, c) },
		},
		{name: "unknown field", in: "selector: up\n", wantErr: "field selector not found"},
		{name: "bad selector", in: "selectors: ['up{']\n", wantErr: "selectors[0]"},
		{name: "selector for everything", in: "selectors: ['{job=~\".*\"}']\n", wantErr: "every series"},
		{name: "truncated", in: "remote_read:\n  url: [", wantErr: "yaml"},
		{name: "not a mapping", in: "- a\n- b\n", wantErr: "unmarshal"},
		{name: "two auth methods", in: "remote_read:\n  basic_auth: {username: a}\n  authorization: {credentials: b}\n", wantErr: "remote_read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func cmpConfig(t *testing.T, want, got *fileConfig) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("remote_read:\n  url: http://x/api/v1/read\nselectors: [up]\nkpis: true\n")
	f.Add("selectors: ['{__name__=~\"a.*\"}']\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := parseConfig([]byte(in))
		if err == nil && c == nil {
			t.Fatal("no config and no error")
		}
	})
}

func TestParseHeaders(t *testing.T) {
	h, err := parseHeaders([]string{"X-Scope-OrgID: tenant-1", "Authorization:Bearer abc"})
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{"X-Scope-Orgid": {"tenant-1"}, "Authorization": {"Bearer abc"}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"no colon", ": value"} {
		if _, err := parseHeaders([]string{bad}); err == nil {
			t.Errorf("parseHeaders(%q): no error", bad)
		}
	}
}

func TestFlagsAndConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "detector.yml")
	if err := os.WriteFile(file, []byte("remote_read:\n  url: http://prom:9090/api/v1/read\nselectors: ['up']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", args: nil},
		{name: "config file", args: []string{"--config.file=" + file}},
		{name: "url twice", args: []string{"--config.file=" + file, "--remote-read.url=http://other/api/v1/read"}, wantErr: "keep one"},
		{name: "selectors twice", args: []string{"--config.file=" + file, "--selector=up"}, wantErr: "keep one"},
		{name: "missing file", args: []string{"--config.file=" + filepath.Join(dir, "nope.yml")}, wantErr: "no such file"},
		{name: "shard out of range", args: []string{"--shard.index=2", "--shard.count=2"}, wantErr: "want 0 to 1"},
		{name: "zero shards", args: []string{"--shard.count=0"}, wantErr: "at least 1"},
		{name: "bad selector", args: []string{"--selector=rate(x[5m])"}, wantErr: "parse selector"},
		{name: "bad URL", args: []string{"--remote-read.url=prometheus:9090"}, wantErr: "want http"},
		{name: "bad header", args: []string{"--remote-read.header=X-Scope-OrgID"}, wantErr: "Name: value"},
		{name: "stale before interval", args: []string{"--series.stale-after=10s"}, wantErr: "more than --score.interval"},
		{name: "storage", args: []string{"--storage.path=" + filepath.Join(dir, "state")}},
		{name: "storage under a file", args: []string{"--storage.path=" + filepath.Join(file, "state")}, wantErr: "want a directory the detector can write"},
		{name: "no checkpoint interval", args: []string{"--storage.path=" + dir, "--storage.checkpoint-interval=0s"}, wantErr: "positive duration"},
		{name: "checkpoint without state", args: []string{"--storage.path=" + dir, "--bench.skip-scoring"}, wantErr: "no state to checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}
