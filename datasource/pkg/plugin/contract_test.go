package plugin

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/telltale-dev/telltale/internal/contracttest"
)

// TestQueriesFollowTheContract parses the PromQL the datasource writes
// itself (the insights' candidate signals, the service map's queries, the
// on-demand health signals) and requires every rate over a contract metric
// to read a counter (pkg/schema's counter rule).
func TestQueriesFollowTheContract(t *testing.T) {
	exprs := map[string]string{}
	for _, s := range candidateSignals {
		exprs["signal "+s.Name] = s.Expr
	}
	for k, e := range graphExprs(time.Hour, "") {
		exprs["service map "+k] = e
	}
	for i, e := range serviceHealthExprs {
		exprs[fmt.Sprintf("health %d", i)] = fmt.Sprintf(e, "")
	}
	rated := 0
	for where, e := range exprs {
		e = strings.ReplaceAll(e, "$__rate_interval", "1m")
		pe, err := parser.ParseExpr(e)
		if err != nil {
			t.Errorf("%s: %q does not parse: %v", where, e, err)
			continue
		}
		names := contracttest.RatedNames(pe)
		rated += len(names)
		for _, msg := range contracttest.ContractCounterErrors(names) {
			t.Errorf("%s: %s", where, msg)
		}
	}
	if rated < 10 {
		t.Errorf("only %d rates found in %d queries: the check proves little", rated, len(exprs))
	}
}
