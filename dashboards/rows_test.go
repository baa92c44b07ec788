package dashboards_test

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// rowsShown counts what a panel shows of Telltale frames. A Node Graph
// shows the rows of its nodes frame; a table the rows of the frames that
// keep a field through the panel's filterFieldsByName pattern (Grafana
// matches it against field display names, which the backend sets with
// displayNameFromDS); an annotation the rows of frames with a time field;
// every other panel the non-null, non-NaN numbers of frames with a time
// field.
func rowsShown(frames data.Frames, p panel) int {
	var keep *regexp.Regexp
	for _, tr := range p.Transformations {
		if tr["id"] != "filterFieldsByName" {
			continue
		}
		opts, _ := tr["options"].(map[string]any)
		inc, _ := opts["include"].(map[string]any)
		if pat, _ := inc["pattern"].(string); pat != "" {
			keep = regexp.MustCompile(strings.Trim(pat, "/"))
		}
	}
	n := 0
	for _, f := range frames {
		timed := slices.ContainsFunc(f.Fields, func(fd *data.Field) bool {
			return fd.Type() == data.FieldTypeTime || fd.Type() == data.FieldTypeNullableTime
		})
		switch p.Type {
		case "nodeGraph":
			if f.Name == "nodes" {
				n += f.Rows()
			}
		case "table":
			if slices.ContainsFunc(f.Fields, func(fd *data.Field) bool { return keep == nil || keep.MatchString(displayName(fd)) }) {
				n += f.Rows()
			}
		case "":
			if timed {
				n += f.Rows()
			}
		default:
			if !timed {
				continue
			}
			for _, fd := range f.Fields {
				if !fd.Type().Numeric() {
					continue
				}
				for i := 0; i < fd.Len(); i++ {
					if v, err := fd.NullableFloatAt(i); err == nil && v != nil && !math.IsNaN(*v) {
						n++
					}
				}
			}
		}
	}
	return n
}

// displayName is a field's name as Grafana shows it, as far as the
// backend's frames need: displayNameFromDS when set, else the field's name.
func displayName(fd *data.Field) string {
	if fd.Config != nil && fd.Config.DisplayNameFromDS != "" {
		return fd.Config.DisplayNameFromDS
	}
	return fd.Name
}

func TestRowsShown(t *testing.T) {
	now := time.Now()
	times := []time.Time{now, now.Add(time.Second)}
	nan := math.NaN()
	series := func(name string, vals ...*float64) *data.Frame {
		v := data.NewField("value", nil, vals)
		v.Config = &data.FieldConfig{DisplayNameFromDS: name}
		return data.NewFrame(name, data.NewField("time", nil, times), v)
	}
	one, two := 1.0, 2.0
	status := data.NewFrame("kpi_status", data.NewField("kpi", nil, []string{"orders", "latency"}), data.NewField("status", nil, []string{"ok", "breached"}))
	filter := []map[string]any{{"id": "filterFieldsByName", "options": map[string]any{"include": map[string]any{"pattern": "^(kpi|status)$"}}}}
	for _, tc := range []struct {
		name   string
		p      panel
		frames data.Frames
		want   int
	}{
		{"time series", panel{Type: "timeseries"}, data.Frames{series("orders", &one, &two), status}, 2},
		{"time series of nulls and NaN", panel{Type: "timeseries"}, data.Frames{series("orders", nil, &nan), status}, 0},
		{"no frames", panel{Type: "timeseries"}, nil, 0},
		{"table keeps the status frame", panel{Type: "table", Transformations: filter}, data.Frames{series("orders", &one, &two), status}, 2},
		{"table filters every frame out", panel{Type: "table", Transformations: filter}, data.Frames{series("orders", &one, &two)}, 0},
		{"table without a filter", panel{Type: "table"}, data.Frames{series("orders", &one, &two), status}, 4},
		{"node graph counts nodes", panel{Type: "nodeGraph"}, data.Frames{data.NewFrame("nodes", data.NewField("id", nil, []string{"a", "b", "c"})), data.NewFrame("edges", data.NewField("id", nil, []string{"a->b"}))}, 3},
		{"node graph without nodes", panel{Type: "nodeGraph"}, data.Frames{data.NewFrame("edges", data.NewField("id", nil, []string{"a->b"}))}, 0},
		{"annotation", panel{}, data.Frames{data.NewFrame("deploys", data.NewField("time", nil, times[:1]), data.NewField("title", nil, []string{"deploy"}))}, 1},
		{"annotation without a time field", panel{}, data.Frames{data.NewFrame("deploy_count", data.NewField("service", nil, []string{"a"}))}, 0},
	} {
		if got := rowsShown(tc.frames, tc.p); got != tc.want {
			t.Errorf("%s: rowsShown = %d, want %d", tc.name, got, tc.want)
		}
	}
}
