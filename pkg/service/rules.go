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
		return nil, err
	}
	r, err := ParseRules(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ParseRules parses the rules format described on Rules.
func ParseRules(in io.Reader) (*Rules, error) {
	dec := yaml.NewDecoder(in)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse: %w", err)
	}
	// The shape is checked first, so that a mistake is told by its line
	// and key rather than by the Go types it does not fit.
	if err := checkRulesShape(&doc); err != nil {
		return nil, err
	}
	var f rulesFile
	if err := doc.Decode(&f); err != nil && doc.Kind != 0 {
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

// checkRulesShape checks that a rules document has the shape of rulesFile:
// a mapping with a services list, each rule a mapping of match (service,
// exe, cgroup: strings) and name (a string).
func checkRulesShape(doc *yaml.Node) error {
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // an empty file: no rules
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return nil
	}
	if top.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: the file must be a mapping with one key, services (a list of rules)", top.Line)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Value != "services" {
			return fmt.Errorf("line %d: unknown key %q; the file has one key, services", k.Line, k.Value)
		}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			return fmt.Errorf("line %d: services must be a list of rules, each \"- match: {…}\" with a \"name: …\"", v.Line)
		}
		for n, r := range v.Content {
			if err := checkRuleShape(n+1, r); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRuleShape(n int, r *yaml.Node) error {
	if r.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: rule %d must be a mapping with match and name", r.Line, n)
	}
	for i := 0; i+1 < len(r.Content); i += 2 {
		k, v := r.Content[i], r.Content[i+1]
		switch k.Value {
		case "name":
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: rule %d: name must be a string", v.Line, n)
			}
		case "match":
			if v.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: rule %d: match must be a mapping of service, exe or cgroup to a regular expression", v.Line, n)
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				mk, mv := v.Content[j], v.Content[j+1]
				if mk.Value != "service" && mk.Value != "exe" && mk.Value != "cgroup" {
					return fmt.Errorf("line %d: rule %d: unknown key %q in match; want service, exe or cgroup", mk.Line, n, mk.Value)
				}
				if mv.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: rule %d: match.%s must be a string (a regular expression)", mv.Line, n, mk.Value)
				}
			}
		default:
			return fmt.Errorf("line %d: rule %d: unknown key %q; a rule has match and name", k.Line, n, k.Value)
		}
	}
	return nil
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
