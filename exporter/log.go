package main

import "log/slog"

// slogAdapter lets promhttp report encoding errors through the exporter's
// logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.l.Error("serve metrics", "err", fmtArgs(v)) }

func fmtArgs(v []any) any {
	if len(v) == 1 {
		return v[0]
	}
	return v
}
