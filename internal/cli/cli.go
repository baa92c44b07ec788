// Package cli holds what the programs' command lines share: flag errors
// that name their flag.
package cli

import (
	"fmt"

	"github.com/alecthomas/kingpin/v2"
)

// FlagError returns err, from app.Parse(args), naming the flag whose value
// was refused when kingpin's error does not ("strconv.ParseFloat: parsing
// "abc": invalid syntax" becomes `--service.limit="abc": …`). Each flag
// value is set again on its own to find it; the caller stops anyway.
func FlagError(app *kingpin.Application, args []string, err error) error {
	ctx, cerr := app.ParseContext(args)
	if cerr != nil {
		return err // a flag kingpin does not know, or a bad form: it says which
	}
	for _, el := range ctx.Elements {
		fc, ok := el.Clause.(*kingpin.FlagClause)
		if !ok || el.Value == nil {
			continue
		}
		m := fc.Model()
		if serr := m.Value.Set(*el.Value); serr != nil {
			return fmt.Errorf("--%s=%q: %w", m.Name, *el.Value, serr)
		}
	}
	return err
}
