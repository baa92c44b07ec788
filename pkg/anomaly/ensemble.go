package anomaly

// Ensemble is Telltale's detector: it runs every model of this package on
// the series and combines their scores into one, with the expected value
// and band of the best-fitting baseline. Create one per series with
// NewEnsemble.
type Ensemble struct {
	f *front
}

// NewEnsemble returns an Ensemble for one series.
func NewEnsemble(cfg Config) *Ensemble {
	return &Ensemble{f: newFront(cfg, newCombined())}
}

// Update implements Detector.
func (e *Ensemble) Update(t int64, v float64) Result { return e.f.Update(t, v) }

// combined is the ensemble's model behind the shared front end.
type combined struct {
	mad      *mad
	skyline  *skyline
	seasonal *seasonal
	ks       *ks
	cp       *changepoint
}

func newCombined() *combined {
	return &combined{mad: newMAD(), skyline: newSkyline(), seasonal: newSeasonal(), ks: newKS(), cp: newChangepoint()}
}

func (c *combined) update(s sample) Result {
	rm := c.mad.update(s)
	rs := c.skyline.update(s)
	rz := c.seasonal.update(s)
	rk := c.ks.update(s)
	rc := c.cp.update(s)
	r := rm
	if rz.Warm {
		r = rz
	}
	r.Score = max(rm.Score, rs.Score, rz.Score, rk.Score, rc.Score)
	r.Warm = rm.Warm || rz.Warm
	if !r.Warm {
		r.Score = 0
	}
	return r
}
