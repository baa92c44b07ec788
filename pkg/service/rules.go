package service

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"
)

// Rules rename or merge discovered services. They are optional: discovery
// needs no configuration. The file format is
//
//	services:
//	  - match: {service: "gunicorn"}        # regexes, fully anchored
//	    name: shop-api                      # rename
//	  - match: {exe: "/opt/legacy/bin/.*"}  # every legacy binary…
//	    name: legacy                        # …merges into one service
//	  - match: {service: "worker-(.*)"}
//	    name: "$1"                          # groups of the service regex
//
// A rule matches when every regex it gives matches; the first matching rule
// names the service. Services given the same name merge.
type Rules struct {
	rules []rule
}

type rule struct {
	service, exe, cgroup *regexp.Regexp
	name                 string
}

type rulesFile struct {
	Services []struct {
		Match struct {
			Service string `yaml:"service"`
			Exe     string `yaml:"exe"`
			Cgroup  string `yaml:"cgroup"`
		} `yaml:"match"`
		Name string `yaml:"name"`
	} `yaml:"services"`
}

// LoadRules reads a rules file.
func LoadRules(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read service rules: %w", err)
	}
	r, err := ParseRules(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("service rules %s: %w", path, err)
	}
	return r, nil
}

// ParseRules parses the rules format described on Rules.
func ParseRules(in io.Reader) (*Rules, error) {
	dec := yaml.NewDecoder(in)
	dec.KnownFields(true)
	var f rulesFile
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse: %w", err)
	}
	r := &Rules{}
	for i, s := range f.Services {
		if s.Name == "" {
			return nil, fmt.Errorf("rule %d: name is empty; say what the matched services are called", i+1)
		}
		if s.Match.Service == "" && s.Match.Exe == "" && s.Match.Cgroup == "" {
			return nil, fmt.Errorf("rule %d (%s): match is empty; give at least one of service, exe, cgroup", i+1, s.Name)
		}
		var rl rule
		rl.name = s.Name
		for _, f := range []struct {
			field, expr string
			dst         **regexp.Regexp
		}{
			{"service", s.Match.Service, &rl.service},
			{"exe", s.Match.Exe, &rl.exe},
			{"cgroup", s.Match.Cgroup, &rl.cgroup},
		} {
			if f.expr == "" {
				continue
			}
			re, err := regexp.Compile("^(?:" + f.expr + ")$")
			if err != nil {
				return nil, fmt.Errorf("rule %d (%s): match.%s: %w", i+1, s.Name, f.field, err)
			}
			*f.dst = re
		}
		r.rules = append(r.rules, rl)
	}
	return r, nil
}

// Apply returns the name the rules give a service discovered as name, for a
// member process with the given executable and cgroup path.
func (r *Rules) Apply(name, exe, cgroup string) string {
	for _, rl := range r.rules {
		if rl.exe != nil && !rl.exe.MatchString(exe) || rl.cgroup != nil && !rl.cgroup.MatchString(cgroup) {
			continue
		}
		if rl.service == nil {
			return rl.name
		}
		m := rl.service.FindStringSubmatchIndex(name)
		if m == nil {
			continue
		}
		out := rl.service.ExpandString(nil, rl.name, name, m)
		if len(out) == 0 {
			return name
		}
		return string(out)
	}
	return name
}

// Len is the number of rules.
func (r *Rules) Len() int { return len(r.rules) }
