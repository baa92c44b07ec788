package cli

import (
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
)

// TestFlagError: a refused value names its flag; other errors pass as
// kingpin gave them.
func TestFlagError(t *testing.T) {
	newApp := func() *kingpin.Application {
		app := kingpin.New("prog", "")
		app.Flag("service.limit", "").Default("1000").Int()
		app.Flag("score.interval", "").Default("15s").Duration()
		app.Flag("name", "").String()
		promslogflag.AddFlags(app, &promslog.Config{})
		return app
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--service.limit=abc"}, `--service.limit="abc": `},
		{[]string{"--name=x", "--score.interval", "soon"}, `--score.interval="soon": `},
		{[]string{"--log.level=loud"}, `--log.level="loud": `},
		{[]string{"--no-such-flag"}, "unknown long flag '--no-such-flag'"},
	} {
		app := newApp()
		_, err := app.Parse(tc.args)
		if err == nil {
			t.Fatalf("%v: parsed", tc.args)
		}
		if got := FlagError(newApp(), tc.args, err); !strings.Contains(got.Error(), tc.want) {
			t.Errorf("%v: %v, want it to contain %q", tc.args, got, tc.want)
		}
	}
}
