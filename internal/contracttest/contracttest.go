// Package contracttest finds, in the PromQL of rules and dashboards, the
// facts of the metric contract (pkg/schema) they restate, so that their
// tests can derive what those must be instead of copying it.
package contracttest

import (
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// ScoreThresholds returns the numbers expr compares the detector's anomaly
// score with (schema.AnomalyScore, whatever function or aggregation wraps
// it): in `max_over_time(<score>[15m]) >= 0.9`, 0.9.
func ScoreThresholds(expr parser.Expr) []float64 {
	var out []float64
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		b, ok := n.(*parser.BinaryExpr)
		if !ok || !b.Op.IsComparisonOperator() {
			return nil
		}
		for _, pair := range [2][2]parser.Expr{{b.LHS, b.RHS}, {b.RHS, b.LHS}} {
			if num, ok := Unparen(pair[1]).(*parser.NumberLiteral); ok && readsScore(pair[0]) {
				out = append(out, num.Val)
			}
		}
		return nil
	})
	return out
}

// readsScore reports whether e selects the detector's score.
func readsScore(e parser.Expr) bool {
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name == schema.AnomalyScore.Name {
			found = true
		}
		return nil
	})
	return found
}

// ValuesAreScores reports whether the values expr returns are the
// detector's anomaly scores: the score selected, through functions and
// aggregations that keep a value's scale (max, min, avg, topk, bottomk,
// quantile, the matching _over_time functions, sort, and the left side of
// and/unless), not a count or a sum of them.
func ValuesAreScores(expr parser.Expr) bool {
	switch e := Unparen(expr).(type) {
	case *parser.VectorSelector:
		return e.Name == schema.AnomalyScore.Name
	case *parser.MatrixSelector:
		return ValuesAreScores(e.VectorSelector)
	case *parser.SubqueryExpr:
		return ValuesAreScores(e.Expr)
	case *parser.AggregateExpr:
		switch e.Op {
		case parser.MAX, parser.MIN, parser.AVG, parser.TOPK, parser.BOTTOMK, parser.QUANTILE:
			return ValuesAreScores(e.Expr)
		}
	case *parser.Call:
		switch e.Func.Name {
		case "max_over_time", "min_over_time", "avg_over_time", "last_over_time", "quantile_over_time", "sort", "sort_desc":
			return len(e.Args) > 0 && ValuesAreScores(e.Args[len(e.Args)-1])
		}
	case *parser.BinaryExpr:
		switch e.Op {
		case parser.LAND, parser.LUNLESS:
			return ValuesAreScores(e.LHS)
		case parser.LOR:
			return ValuesAreScores(e.LHS) && ValuesAreScores(e.RHS)
		}
	}
	return false
}

// counterFuncs are the PromQL functions meant for counters only.
var counterFuncs = map[string]bool{"rate": true, "irate": true, "increase": true, "resets": true}

// RatedNames returns the metric names expr reads through a function meant
// for counters (rate, irate, increase, resets), in order of appearance.
func RatedNames(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		c, ok := n.(*parser.Call)
		if !ok || !counterFuncs[c.Func.Name] {
			return nil
		}
		for _, a := range c.Args {
			parser.Inspect(a, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" {
					out = append(out, vs.Name)
				}
				return nil
			})
		}
		return nil
	})
	return out
}

// ContractCounterErrors says, for each name of the contract among names
// that is not a counter's series (schema.IsCounter), that a counter
// function is applied to it; names outside the contract are not judged.
func ContractCounterErrors(names []string) []string {
	var out []string
	for _, n := range names {
		if inContract(n) && !schema.IsCounter(n) {
			out = append(out, n+" is not a counter (pkg/schema), but rate, irate, increase or resets reads it")
		}
	}
	return out
}

// inContract reports whether name is a series name of the contract.
func inContract(name string) bool {
	for _, m := range schema.All {
		for _, n := range m.SeriesNames() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// Unparen strips the parentheses around e.
func Unparen(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}
