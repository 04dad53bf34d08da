package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Machine is where a run was measured.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	MemoryGB   string `json:"memoryGb"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	PostgreSQL string `json:"postgresql"`
	Commit     string `json:"commit"`
	LoadBefore string `json:"loadBefore"` // /proc/loadavg's 1, 5 and 15 minute averages at the start
	LoadAfter  string `json:"loadAfter"`  // and at the end
	Processes  string `json:"processes"`  // running/total scheduling entities at the start
}

// loadAverage is the 1, 5 and 15 minute load averages of /proc/loadavg.
func loadAverage() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func describeMachine(ctx context.Context, pool *pgxpool.Pool) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		CPU: procField("/proc/cpuinfo", "model name"), Kernel: strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		LoadBefore: loadAverage()}
	if f := strings.Fields(readFile("/proc/loadavg")); len(f) > 3 {
		m.Processes = f[3]
	}
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n float64
		fmt.Sscanf(kb, "%f", &n)
		m.MemoryGB = fmt.Sprintf("%.1f", n/1024/1024)
	}
	_ = pool.QueryRow(ctx, "select current_setting('server_version')").Scan(&m.PostgreSQL)
	m.Commit = "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+changes"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			m.Commit = rev + dirty
		}
	}
	return m
}

func (m Machine) print(w io.Writer) {
	fmt.Fprintf(w, "machine: %s, %d cores, %s GB, Linux %s\n", m.CPU, m.Cores, m.MemoryGB, m.Kernel)
	fmt.Fprintf(w, "versions: %s, PostgreSQL %s, kvsync %s\n", m.Go, m.PostgreSQL, m.Commit)
	fmt.Fprintf(w, "load average (1, 5, 15 min) at the start: %s (running/total tasks %s) on %d cores\n\n", m.LoadBefore, m.Processes, m.Cores)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	sc := bufio.NewScanner(strings.NewReader(readFile(path)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// printTable prints the cases as one Markdown table (readable as it is, and pasted as it is into the
// README): one row per case, the database profiles side by side (median wall time, products/s and the
// ratios of each), then the dispatcher's lines and the bars. API calls, rows written and peak RSS are
// those of the first profile's median run (the work is the same under each).
func printTable(w io.Writer, rep *Report) {
	head := []string{"case", "products", "runs", "API calls", "429s", "rows written", "peak RSS"}
	for _, p := range rep.Profiles {
		head = append(head, p+": wall", p+": products/s", p+": vs baseline", p+": vs floor")
	}
	type key struct{ group, name string }
	var order []key
	byKey := map[key]map[string]*Case{}
	for i := range rep.Cases {
		c := &rep.Cases[i]
		k := key{c.Group, c.Name}
		if byKey[k] == nil {
			byKey[k] = map[string]*Case{}
			order = append(order, k)
		}
		byKey[k][c.Profile] = c
	}
	rows := [][]string{head}
	for _, k := range order {
		var first *Case
		for _, p := range rep.Profiles {
			if c := byKey[k][p]; c != nil && first == nil {
				first = c
			}
		}
		if first == nil {
			continue
		}
		lat := ""
		if first.LatencyMS > 0 {
			lat = fmt.Sprintf(", +%.0f ms/request", first.LatencyMS)
		}
		r := []string{first.Name + lat, thousands(first.Products), fmt.Sprint(first.Runs), thousands(int(first.APICalls)),
			thousands(int(first.TooMany)), thousands(first.RowsWritten), fmt.Sprintf("%.0f MB", first.PeakRSSMB)}
		for _, p := range rep.Profiles {
			c := byKey[k][p]
			if c == nil {
				r = append(r, "—", "—", "—", "—")
				continue
			}
			r = append(r, seconds(c.WallMS), thousands(int(math.Round(c.ProductsPerS))), ratio(c.VsBaseline), ratio(c.VsFloor))
		}
		rows = append(rows, r)
	}
	if f := rep.Freshness; f != nil {
		// the webhook case in the same table: the wall time is a change's, from the shop to its row
		r := []string{"webhooks: one change → its row in kiotviet_products_full, p50 (p95)", thousands(f.Products),
			fmt.Sprint(f.Changes), thousands(int(f.APICalls)), "0", thousands(f.Changes), "—"}
		for _, p := range rep.Profiles {
			if p != f.Profile {
				r = append(r, "—", "—", "—", "—")
				continue
			}
			r = append(r, fmt.Sprintf("%s (%s)", seconds(f.P50MS), seconds(f.P95MS)), "—", "—", "—")
		}
		rows = append(rows, r)
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, cell := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			if i == 0 {
				b.WriteString(" " + cell + pad + " |")
			} else {
				b.WriteString(" " + pad + cell + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i, n := range width {
		sep[i] = strings.Repeat("-", n)
		if i > 0 {
			sep[i] = sep[i][1:] + ":"
		}
	}
	line(sep)
	for _, r := range rows[1:] {
		line(r)
	}
	if f := rep.Freshness; f != nil {
		printFreshness(w, f)
	}
	fmt.Fprintf(w, "\nWall times are the median of each case's runs (every run's time is in the JSON report); ratios are of medians. The API floor reads no database: it is measured once and listed under each profile.\n")
	for _, d := range rep.Dispatchers {
		fmt.Fprintf(w, "\nDispatcher [%s]: %s due schedules over %s credentials, %d dispatchers (claim limit %d): %s claims/s, %s claimed, duplicates %d, missed %d, claim errors %d (%.1f s)\n",
			d.Profile, thousands(d.Schedules), thousands(d.Credentials), d.Dispatchers, d.ClaimLimit, thousands(int(math.Round(d.ClaimsPerS))),
			thousands(d.Claimed), d.Duplicates, d.Missed, d.Errors, d.Seconds)
		if d.Tick != nil {
			t := d.Tick
			fmt.Fprintf(w, "Dispatcher tick [%s]: %s shops with one due schedule each, %d dispatchers claiming at once (claim limit %d): every due schedule claimed in %.2f s (%s claims), duplicates %d, missed %d; claim statement median %.1f ms, max %.1f ms\n",
				d.Profile, thousands(t.Shops), t.Dispatchers, t.ClaimLimit, t.Seconds, thousands(t.Claimed), t.Duplicates, t.Missed, t.ClaimMedianMS, t.ClaimMaxMS)
		}
	}
	fmt.Fprintln(w, "\nQuality bars (DESIGN.md §8; FAIL fails the run) and targets (the performance issue's goals; MISS is reported, not failed):")
	for _, c := range rep.Checks {
		mark := "ok  "
		switch {
		case !c.OK && c.Target:
			mark = "MISS"
		case !c.OK:
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Bar, c.Detail)
	}
	fmt.Fprintf(w, "\nload average (1, 5, 15 min) at the start: %s, at the end: %s\n", rep.Machine.LoadBefore, rep.Machine.LoadAfter)
	fmt.Fprintf(w, "bench took %.0f s\n", rep.TotalS)
}

func seconds(msec float64) string {
	if msec < 1000 {
		return fmt.Sprintf("%.0f ms", msec)
	}
	return fmt.Sprintf("%.2f s", msec/1000)
}

func ratio(r *float64) string {
	if r == nil {
		return "—"
	}
	if *r < 0.1 {
		return fmt.Sprintf("%.3f×", *r)
	}
	return fmt.Sprintf("%.2f×", *r)
}

// thousands writes n with comma separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// slowerMargin is how much slower than the earlier system kvsync's zero-latency full sync may measure
// before "no slower" fails: the one bar whose ratio sits near its limit, where two medians of 3 on a
// shared machine differ by up to ~10% with no change of code.
const slowerMargin = 0.10

// checks turns the cases into DESIGN.md §8's bars and the targets, per database profile. The
// bars have room for a noisy machine (medians, and a margin where a ratio is close: slowerMargin; the
// others sit far from their limits); a target is the goal itself, without margin.
func checks(cfg Config, rep *Report) []Check {
	var out []Check
	add := func(target bool, bar string, ok bool, format string, args ...any) {
		out = append(out, Check{Bar: bar, OK: ok, Target: target, Detail: fmt.Sprintf(format, args...)})
	}
	type gp struct{ group, profile string }
	find := func(g gp, system, scenario string) *Case {
		for i := range rep.Cases {
			c := &rep.Cases[i]
			if c.Group == g.group && c.Profile == g.profile && c.System == system && c.Scenario == scenario {
				return c
			}
		}
		return nil
	}
	var groups []gp
	seen := map[gp]bool{}
	for _, c := range rep.Cases {
		if g := (gp{c.Group, c.Profile}); !seen[g] {
			seen[g] = true
			groups = append(groups, g)
		}
	}
	type rss struct {
		first, last float64
		n           int
	}
	fullRSS := map[string]*rss{} // by profile + system: first and last zero-latency group
	for _, g := range groups {
		name := g.group + " [" + g.profile + "]"
		kvFull, kvInc, kvNone := find(g, KindKvsync, "full"), find(g, KindKvsync, "incremental"), find(g, KindKvsync, "unchanged")
		blFull, blInc, floor := find(g, KindBaseline, "full"), find(g, KindBaseline, "incremental"), find(g, KindFloor, "read")
		latency := kvFull != nil && kvFull.LatencyMS > 0
		if kvNone != nil {
			add(false, "unchanged re-sync writes 0 rows", kvNone.RowsWritten == 0, "%s: %s rows written", name, thousands(kvNone.RowsWritten))
		}
		if kvInc != nil {
			pages := (kvInc.Changed + 99) / 100
			c := int(kvInc.APICalls) - pages
			add(false, "incremental sync makes ceil(k/100)+c API calls", c >= 0 && c <= 5,
				"%s: k=%s changed → ceil(k/100)=%d, measured %d calls, c=%d (allowed ≤ 5; token, categories, an empty last page)",
				name, thousands(kvInc.Changed), pages, kvInc.APICalls, c)
		}
		if latency && kvFull != nil && floor != nil {
			r := kvFull.WallMS / floor.WallMS
			add(false, "with latency, a full sync takes ≤ 1.2× the sequential API floor", r <= 1.2, "%s: %s vs %s → %.2f×", name, seconds(kvFull.WallMS), seconds(floor.WallMS), r)
			add(true, "with latency, a full sync takes ≤ 0.6× the sequential API floor with no 429", r <= 0.6 && kvFull.TooMany == 0,
				"%s: %.2f×, %d 429s from the fake's default limits", name, r, kvFull.TooMany)
		}
		if !latency && kvFull != nil && blFull != nil {
			r := kvFull.WallMS / blFull.WallMS
			add(false, "at zero latency, a full sync is no slower than the earlier system", r <= 1+slowerMargin,
				"%s: %s vs %s → %.2f× (%s products/s; fails above %.2f×)", name, seconds(kvFull.WallMS), seconds(blFull.WallMS), r,
				thousands(int(math.Round(kvFull.ProductsPerS))), 1+slowerMargin)
			add(true, "at zero latency, a full sync takes ≤ 0.7× the earlier system's", r <= 0.7, "%s: %.2f×", name, r)
		}
		if kvInc != nil && blInc != nil {
			rt, rc := kvInc.WallMS/blInc.WallMS, float64(kvInc.APICalls)/float64(blInc.APICalls)
			add(false, "the scheduled run (1% changed) takes a small fraction of the earlier system's", rt <= 0.2 && rc <= 0.2,
				"%s: time %s vs %s → %.3f×; API calls %d vs %d → %.3f× (bar: ≤ 0.2× both)",
				name, seconds(kvInc.WallMS), seconds(blInc.WallMS), rt, kvInc.APICalls, blInc.APICalls, rc)
		}
		if !latency && kvFull != nil && blFull != nil {
			for _, c := range []*Case{kvFull, blFull} {
				k := g.profile + "/" + c.System
				v := fullRSS[k]
				if v == nil {
					v = &rss{first: c.PeakRSSMB}
					fullRSS[k] = v
				}
				v.last = c.PeakRSSMB
				v.n++
			}
		}
	}
	for _, p := range rep.Profiles {
		kv, bl := fullRSS[p+"/"+KindKvsync], fullRSS[p+"/"+KindBaseline]
		if kv == nil || bl == nil || kv.n < 2 {
			continue
		}
		first, last := thousands(cfg.Sizes[0]), thousands(cfg.Sizes[len(cfg.Sizes)-1])
		add(false, "a full sync holds flat memory (±20%) while the earlier system's grows", kv.last <= kv.first*1.2 && kv.last >= kv.first*0.8 && bl.last > bl.first*1.2,
			"[%s] kvsync %.0f MB at %s → %.0f MB at %s (%+.0f%%); earlier system %.0f MB → %.0f MB (%.1f×)",
			p, kv.first, first, kv.last, last, 100*(kv.last/kv.first-1), bl.first, bl.last, bl.last/bl.first)
	}
	for _, d := range rep.Dispatchers {
		add(false, "N dispatchers on M due schedules run each exactly once", d.Duplicates == 0 && d.Missed == 0,
			"[%s] %d dispatchers, %s schedules: %d duplicates, %d missed, %s claims/s", d.Profile, d.Dispatchers, thousands(d.Schedules), d.Duplicates, d.Missed, thousands(int(math.Round(d.ClaimsPerS))))
		if t := d.Tick; t != nil {
			add(false, "one tick claims every due schedule once", t.Duplicates == 0 && t.Missed == 0,
				"[%s] %s shops: %d duplicates, %d missed", d.Profile, thousands(t.Shops), t.Duplicates, t.Missed)
			add(true, "one tick claims every due schedule of 10,000 shops in under 5 s", t.Seconds < 5 && t.Shops >= 10_000,
				"[%s] %s shops in %.2f s", d.Profile, thousands(t.Shops), t.Seconds)
		}
	}
	if f := rep.Freshness; f != nil {
		add(false, "a shop's change is in the ERP's tables within seconds (webhooks), at no API call unless re-read", f.P95MS < 5000 && int(f.APICalls) <= f.Refetched,
			"%d changes: p50 %.0f ms, p95 %.0f ms; %d API calls for %d re-reads", f.Changes, f.P50MS, f.P95MS, f.APICalls, f.Refetched)
	}
	return out
}
