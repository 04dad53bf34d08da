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
}

func describeMachine(ctx context.Context, pool *pgxpool.Pool) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		CPU: procField("/proc/cpuinfo", "model name"), Kernel: strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))}
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
	fmt.Fprintf(w, "versions: %s, PostgreSQL %s, kvsync %s\n\n", m.Go, m.PostgreSQL, m.Commit)
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
// README), then the dispatcher's line and the bars.
func printTable(w io.Writer, rep *Report) {
	rows := [][]string{{"case", "products", "wall", "API calls", "rows written", "peak RSS", "products/s", "vs baseline", "vs floor"}}
	for _, c := range rep.Cases {
		lat := ""
		if c.LatencyMS > 0 {
			lat = fmt.Sprintf(", +%.0f ms/request", c.LatencyMS)
		}
		rows = append(rows, []string{c.Name + lat, thousands(c.Products), seconds(c.WallMS), thousands(int(c.APICalls)),
			thousands(c.RowsWritten), fmt.Sprintf("%.0f MB", c.PeakRSSMB), thousands(int(math.Round(c.ProductsPerS))),
			ratio(c.VsBaseline), ratio(c.VsFloor)})
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
	if d := rep.Dispatcher; d != nil {
		fmt.Fprintf(w, "\nDispatcher: %s due schedules over %s credentials, %d dispatchers (claim limit %d): %s claims/s, %s claimed, duplicates %d, missed %d, claim errors %d (%.1f s)\n",
			thousands(d.Schedules), thousands(d.Credentials), d.Dispatchers, d.ClaimLimit, thousands(int(math.Round(d.ClaimsPerS))),
			thousands(d.Claimed), d.Duplicates, d.Missed, d.Errors, d.Seconds)
	}
	fmt.Fprintln(w, "\nQuality bars (DESIGN.md §8):")
	for _, c := range rep.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Bar, c.Detail)
	}
	fmt.Fprintf(w, "\nbench took %.0f s\n", rep.TotalS)
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

// checks turns the cases into DESIGN.md §8's bars.
func checks(cfg Config, rep *Report) []Check {
	var out []Check
	add := func(bar string, ok bool, format string, args ...any) {
		out = append(out, Check{Bar: bar, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	find := func(group, system, scenario string) *Case {
		for i := range rep.Cases {
			c := &rep.Cases[i]
			if c.Group == group && c.System == system && c.Scenario == scenario {
				return c
			}
		}
		return nil
	}
	var groups []string
	for _, c := range rep.Cases {
		if len(groups) == 0 || groups[len(groups)-1] != c.Group {
			groups = append(groups, c.Group)
		}
	}
	fullRSS := map[string][2]float64{} // by system: first and last zero-latency group
	zeroGroups := 0
	for _, g := range groups {
		kvFull, kvInc, kvNone := find(g, KindKvsync, "full"), find(g, KindKvsync, "incremental"), find(g, KindKvsync, "unchanged")
		blFull, blInc, floor := find(g, KindBaseline, "full"), find(g, KindBaseline, "incremental"), find(g, KindFloor, "read")
		latency := kvFull != nil && kvFull.LatencyMS > 0
		if kvNone != nil {
			add("unchanged re-sync writes 0 rows", kvNone.RowsWritten == 0, "%s: %s rows written", g, thousands(kvNone.RowsWritten))
		}
		if kvInc != nil {
			pages := (kvInc.Changed + 99) / 100
			c := int(kvInc.APICalls) - pages
			add("incremental sync makes ceil(k/100)+c API calls", c >= 0 && c <= 5,
				"%s: k=%s changed → ceil(k/100)=%d, measured %d calls, c=%d (allowed ≤ 5; token, categories, an empty last page)",
				g, thousands(kvInc.Changed), pages, kvInc.APICalls, c)
		}
		if latency && kvFull != nil && floor != nil {
			r := kvFull.WallMS / floor.WallMS
			add("with latency, a full sync takes ≤ 1.2× the API floor", r <= 1.2, "%s: %s vs %s → %.2f×", g, seconds(kvFull.WallMS), seconds(floor.WallMS), r)
		}
		if !latency && kvFull != nil && blFull != nil {
			r := kvFull.WallMS / blFull.WallMS
			add("at zero latency, a full sync is no slower than the earlier system", r <= 1.0,
				"%s: %s vs %s → %.2f× (%s products/s)", g, seconds(kvFull.WallMS), seconds(blFull.WallMS), r, thousands(int(math.Round(kvFull.ProductsPerS))))
		}
		if kvInc != nil && blInc != nil {
			rt, rc := kvInc.WallMS/blInc.WallMS, float64(kvInc.APICalls)/float64(blInc.APICalls)
			add("the scheduled run (1% changed) takes a small fraction of the earlier system's", rt <= 0.2 && rc <= 0.2,
				"%s: time %s vs %s → %.3f×; API calls %d vs %d → %.3f× (bar: ≤ 0.2× both)",
				g, seconds(kvInc.WallMS), seconds(blInc.WallMS), rt, kvInc.APICalls, blInc.APICalls, rc)
		}
		if !latency && kvFull != nil && blFull != nil {
			zeroGroups++
			for _, c := range []*Case{kvFull, blFull} {
				v := fullRSS[c.System]
				if zeroGroups == 1 {
					v[0] = c.PeakRSSMB
				}
				v[1] = c.PeakRSSMB
				fullRSS[c.System] = v
			}
		}
	}
	if zeroGroups >= 2 {
		kv, bl := fullRSS[KindKvsync], fullRSS[KindBaseline]
		first, last := thousands(cfg.Sizes[0]), thousands(cfg.Sizes[len(cfg.Sizes)-1])
		add("a full sync holds flat memory (±20%) while the earlier system's grows", kv[1] <= kv[0]*1.2 && kv[1] >= kv[0]*0.8 && bl[1] > bl[0]*1.2,
			"kvsync %.0f MB at %s → %.0f MB at %s (%+.0f%%); earlier system %.0f MB → %.0f MB (%.1f×)",
			kv[0], first, kv[1], last, 100*(kv[1]/kv[0]-1), bl[0], bl[1], bl[1]/bl[0])
	}
	if d := rep.Dispatcher; d != nil {
		add("N dispatchers on M due schedules run each exactly once", d.Duplicates == 0 && d.Missed == 0,
			"%d dispatchers, %s schedules: %d duplicates, %d missed, %s claims/s", d.Dispatchers, thousands(d.Schedules), d.Duplicates, d.Missed, thousands(int(math.Round(d.ClaimsPerS))))
	}
	if f := rep.Freshness; f != nil {
		add("a shop's change is in the ERP's tables within seconds (webhooks), at no API call unless re-read", f.P95MS < 5000 && int(f.APICalls) <= f.Refetched,
			"%d changes: p50 %.0f ms, p95 %.0f ms; %d API calls for %d re-reads", f.Changes, f.P50MS, f.P95MS, f.APICalls, f.Refetched)
	}
	return out
}
