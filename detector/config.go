package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"

	"github.com/telltale-dev/telltale/pkg/remoteread"
)

// fileConfig is the --config.file format. Everything is optional; flags
// given on the command line may not also be set here.
type fileConfig struct {
	RemoteRead *remoteReadConfig `yaml:"remote_read"`
	// Selectors replace the default selectors.
	Selectors []string `yaml:"selectors"`
	// KPIs says whether to also score every KPI apps declare.
	KPIs *bool `yaml:"kpis"`
}

// remoteReadConfig says where and how to read.
type remoteReadConfig struct {
	URL     string            `yaml:"url"`
	Timeout model.Duration    `yaml:"timeout"`
	Headers map[string]string `yaml:"headers"`
	// HTTPClientConfig is Prometheus's usual client block: basic_auth,
	// authorization, oauth2, tls_config, proxy_url, ...
	HTTPClientConfig config.HTTPClientConfig `yaml:",inline"`
}

// loadConfig reads and checks a config file.
func loadConfig(path string) (*fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	cfg, err := parseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.RemoteRead != nil {
		// Files the HTTP settings name (CA, password file) are relative to
		// the config file, as in Prometheus.
		cfg.RemoteRead.HTTPClientConfig.SetDirectory(filepath.Dir(path))
	}
	return cfg, nil
}

func parseConfig(b []byte) (*fileConfig, error) {
	var cfg fileConfig
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return nil, err
	}
	if rr := cfg.RemoteRead; rr != nil {
		if err := rr.HTTPClientConfig.Validate(); err != nil {
			return nil, fmt.Errorf("remote_read: %w", err)
		}
	}
	for i, s := range cfg.Selectors {
		if _, err := remoteread.ParseSelector(s); err != nil {
			return nil, fmt.Errorf("selectors[%d]: %w", i, err)
		}
	}
	return &cfg, nil
}

// parseHeaders reads "Name: value" flag values.
func parseHeaders(hs []string) (http.Header, error) {
	out := http.Header{}
	for _, h := range hs {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("header %q: want \"Name: value\", e.g. \"X-Scope-OrgID: tenant-1\"", h)
		}
		out.Add(name, strings.TrimSpace(value))
	}
	return out, nil
}

// clientOptions builds the remote-read client settings from flags and the
// config file's remote_read block. Timeouts are not set here: the engine
// gives each round its own deadline.
func clientOptions(url string, header http.Header, rr *remoteReadConfig) (remoteread.Options, error) {
	opts := remoteread.Options{URL: url, Header: header}
	if rr == nil {
		return opts, nil
	}
	if rr.URL != "" {
		opts.URL = rr.URL
	}
	for k, v := range rr.Headers {
		opts.Header.Set(k, v)
	}
	hc, err := config.NewClientFromConfig(rr.HTTPClientConfig, "remote_read")
	if err != nil {
		return opts, fmt.Errorf("remote_read: %w", err)
	}
	opts.HTTPClient = hc
	return opts, nil
}
