package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	assert.Equal(t, 0.0, median(nil))
	assert.Equal(t, 5.0, median([]float64{9, 1, 5}))
	assert.Equal(t, 4.0, median([]float64{9, 1, 3, 5}))
	xs := []float64{3, 1, 2}
	median(xs)
	assert.Equal(t, []float64{3, 1, 2}, xs, "the runs keep their order")
}

// A case is its median run: the wall time is the median, and the other figures come from that run, so
// one slow run (another process on the machine) moves neither.
func TestCaseIsTheMedianRun(t *testing.T) {
	s := &series{system: KindKvsync, scenario: "full", name: "kvsync: full sync"}
	for i, wall := range []time.Duration{900 * time.Millisecond, 3 * time.Second, time.Second} {
		s.runs = append(s.runs, sample{f: Figures{WallNS: int64(wall), Rows: 100 + i, PeakRSSKB: 20 << 10}, calls: int64(10 + i), products: 1000})
	}
	c := s.toCase("1,000 products × 5 branches", ProfileDurable, 0)
	assert.Equal(t, 3, c.Runs)
	assert.Equal(t, []float64{900, 3000, 1000}, c.RunsMS)
	assert.Equal(t, 1000.0, c.WallMS)
	assert.Equal(t, 102, c.RowsWritten, "the median run's figures")
	assert.Equal(t, int64(12), c.APICalls)
	assert.Equal(t, 1000.0, c.ProductsPerS)
}

// A missed target is reported but does not fail the run; a missed bar does.
func TestTargetsDoNotFailTheRun(t *testing.T) {
	group := "1,000 products × 5 branches"
	mk := func(profile, system, scenario string, wall float64) Case {
		return Case{Group: group, Profile: profile, System: system, Scenario: scenario, WallMS: wall, APICalls: 11}
	}
	rep := &Report{Profiles: []string{ProfileDev}, Cases: []Case{
		mk(ProfileDev, KindFloor, "read", 100),
		mk(ProfileDev, KindBaseline, "full", 1000),
		mk(ProfileDev, KindKvsync, "full", 900), // 0.9×: the bar (≤ 1.0×) holds, the target (≤ 0.7×) is missed
	}}
	got := checks(Config{Sizes: []int{1000}}, rep)
	var target, bar *Check
	for i := range got {
		switch {
		case strings.Contains(got[i].Bar, "0.7×"):
			target = &got[i]
		case strings.Contains(got[i].Bar, "no slower"):
			bar = &got[i]
		}
	}
	require.NotNil(t, target)
	require.NotNil(t, bar)
	assert.True(t, bar.OK)
	assert.False(t, target.OK)
	assert.True(t, target.Target)
	assert.False(t, barsMissed(got))

	rep.Cases[2].WallMS = 1050 // slower, within the margin for a noisy machine: the bar holds
	assert.False(t, barsMissed(checks(Config{Sizes: []int{1000}}, rep)))
	rep.Cases[2].WallMS = 1150 // slower than the earlier system beyond the margin: the bar fails
	assert.True(t, barsMissed(checks(Config{Sizes: []int{1000}}, rep)))
}
