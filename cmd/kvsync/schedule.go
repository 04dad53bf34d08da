package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/vocab"
)

const scheduleUsage = `
Usage: kvsync schedule list [--json]
       kvsync schedule set --credential ID --type T [--every hourly|daily|Nh] [--at HH:MM|none] [--timezone TZ] [--enabled|--disabled]
       kvsync schedule run ID [--wait]
       kvsync schedule pause ID [--reason TEXT]
       kvsync schedule resume ID | --credential ID
       kvsync schedule delete ID

list shows every schedule with its id, state, next run and last sync in the schedule's own time zone.
set creates or changes the schedule of one credential and sync type (one per shop and type), changing only
the flags given; a new schedule needs --every. The database computes the next run and set prints it.
--every 6h is every six hours (1-168). --at pins the runs to a time of day, for any period: daily --at
02:00 runs at 02:00 every day; 6h --at 02:00 at 02:00, 08:00, 14:00, 20:00; 5h --at 02:00 at 02:00,
07:00, … 22:00, then 03:00 the next day. --at none removes it.
run makes a schedule due now (the next dispatcher tick takes it); with --wait it runs here, at once, with
a progress line, as the scheduled run would.
pause stops a schedule until resume; a schedule KiotViet rejected the credentials of is paused the same
way, and resumes when the connection is saved again. resume --credential resumes all of a credential's.
delete removes a schedule; its runs stay in the log.`

func cmdSchedule(ctx context.Context, e env) error {
	sub, e, ok, err := takeSubcommand(e, "schedule", scheduleUsage, "list", "set", "run", "pause", "resume", "delete")
	if !ok {
		return err
	}
	switch sub {
	case "list":
		return scheduleList(ctx, e)
	case "set":
		return scheduleSet(ctx, e)
	case "run":
		return scheduleRun(ctx, e)
	case "pause":
		return schedulePause(ctx, e)
	case "resume":
		return scheduleResume(ctx, e)
	case "delete":
		return scheduleDelete(ctx, e)
	}
	return unknownSubcommand("schedule", sub, "list", "set", "run", "pause", "resume", "delete")
}

var (
	timeOfDay = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	uuidRE    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// scheduleID takes the schedule id, given first (schedule run ID --wait) or after the flags.
func scheduleID(fs *flag.FlagSet, args []string) (string, error) {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return "", fmt.Errorf("schedule %s: unexpected argument %q (see --help)", fs.Name(), fs.Arg(0))
	}
	if id == "" {
		return "", fmt.Errorf("schedule %s: give the schedule's id (see 'kvsync schedule list')", fs.Name())
	}
	if !uuidRE.MatchString(id) {
		return "", fmt.Errorf("schedule %s: %q is not a schedule id (a UUID): see 'kvsync schedule list'", fs.Name(), id)
	}
	return id, nil
}

// scheduleError says what went wrong in words, and what to do: never SQL, a constraint's or a
// function's name. It decides by the error's code and the rule it names (the constraint field, which
// the schedule functions set on each refusal: 20261202940000_schedule_rule_names.sql), never by the
// wording of a message.
func scheduleError(sub, id string, err error) error {
	var se *errs.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("schedule %s: %w", sub, err)
	}
	msg := se.Message
	switch se.Constraint {
	case "kiotviet_sync_schedules_one_per_shop":
		return fmt.Errorf("schedule %s: %s: change that schedule instead (kvsync schedule list shows it)", sub, msg)
	case "kiotviet_sync_logs_one_running":
		return fmt.Errorf("schedule %s: the credential is already syncing: wait for that run to end ('kvsync status'), or leave out --wait", sub)
	case "kiotviet_sync_schedules_custom_interval_hours_check":
		return fmt.Errorf("schedule %s: --every: the number of hours must be between 1 and 168", sub)
	case "kiotviet_sync_schedules_timezone_known":
		return fmt.Errorf("schedule %s: --timezone: %s: use an IANA name such as Asia/Ho_Chi_Minh or Europe/Paris", sub,
			strings.TrimPrefix(msg, "kiotviet_sync_schedules.timezone: "))
	case "kiotviet_sync_schedules_credential_id_fkey":
		return fmt.Errorf("schedule %s: no credential %s: see 'kvsync credentials list'", sub, id)
	case "kiotviet_sync_schedules_not_paused":
		return fmt.Errorf("schedule %s: %s; resume it first: kvsync schedule resume %s", sub, msg, id)
	case "kiotviet_sync_schedules_enabled":
		return fmt.Errorf("schedule %s: %s: switch it on first: kvsync schedule set … --enabled", sub, msg)
	case "kiotviet_credentials_active":
		return fmt.Errorf("schedule %s: %s: save the KiotViet connection again ('kvsync credentials add')", sub, msg)
	case "kiotviet_sync_schedules_frequency_given":
		return fmt.Errorf("schedule %s: %s: add --every hourly, daily or Nh", sub, msg)
	}
	// Over PostgREST an error carries no constraint field (only a unique violation's message names
	// one): the database's message, which names the problem in words, is said as it is.
	switch se.Code {
	case errs.NotFound:
		if sub == "set" { // set's id is the credential's; the schedule is found by credential and type
			return fmt.Errorf("schedule %s: %s: see 'kvsync credentials list'", sub, msg)
		}
		return fmt.Errorf("schedule %s: no schedule %s: see 'kvsync schedule list'", sub, id)
	case errs.Invalid, errs.State, errs.Conflict:
		return fmt.Errorf("schedule %s: %s", sub, msg)
	}
	return dbError("schedule "+sub, err)
}

func scheduleList(ctx context.Context, e env) error {
	fs := newFlags(e, "list", scheduleUsage)
	asJSON := fs.Bool("json", false, "print the rows as JSON (the kiotviet_schedule_status view)")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	a, qctx, done, err := connect(ctx, e, false)
	if err != nil {
		return err
	}
	defer done()
	rows, err := a.store.Status(qctx)
	if err != nil {
		return scheduleError("list", "", err)
	}
	if *asJSON {
		if rows == nil {
			rows = []store.ScheduleStatus{}
		}
		return writeJSON(e.stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, "no schedules yet: add one with 'kvsync schedule set --credential ID --type products_full --every hourly'")
		return nil
	}
	tw := newTable(e.stdout, "ID", "RETAILER", "TYPE", "EVERY", "STATE", "NEXT RUN", "LAST SYNC")
	for _, r := range rows {
		next := deref(r.NextRunLocal, "-")
		if !r.Enabled || !r.CredentialActive {
			next = "-"
		}
		row(tw, r.ScheduleID, deref(r.RetailerName, r.CredentialID), r.SyncType, every(r), state(r), next,
			deref(r.LastRunLocal, "never"))
	}
	return tw.Flush()
}

// state renders whether a schedule runs: on, off, paused: <reason>, credential inactive.
func state(r store.ScheduleStatus) string {
	switch {
	case r.PausedReason != nil:
		return "paused: " + oneLine(*r.PausedReason, 70)
	case !r.Enabled:
		return "off"
	case !r.CredentialActive:
		return "credential inactive"
	}
	return "on"
}

func scheduleSet(ctx context.Context, e env) error {
	fs := newFlags(e, "set", scheduleUsage)
	credID := fs.String("credential", "", "credential id (see 'kvsync credentials list')")
	syncType := fs.String("type", "", "sync type: "+vocab.Names(vocab.SyncTypes))
	everyFlag := fs.String("every", "", "hourly, daily, or Nh for every N hours (1-168)")
	at := fs.String("at", "", "time of day HH:MM the runs are pinned to (in --timezone); none removes it")
	tz := fs.String("timezone", "", "IANA time zone of the schedule (new schedules: Asia/Ho_Chi_Minh)")
	enabled := fs.Bool("enabled", false, "switch the schedule on")
	disabled := fs.Bool("disabled", false, "keep the schedule but do not run it")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if *credID == "" || *syncType == "" {
		return errors.New("schedule set: --credential and --type are required (see --help)")
	}
	if !uuidRE.MatchString(*credID) {
		return fmt.Errorf("schedule set: --credential %q is not a credential id (a UUID): see 'kvsync credentials list'", *credID)
	}
	if !vocab.SyncType(*syncType).Valid() {
		return fmt.Errorf("schedule set: --type %q is not one of %s", *syncType, vocab.Names(vocab.SyncTypes))
	}
	if given["enabled"] && given["disabled"] {
		return errors.New("schedule set: give --enabled or --disabled, not both")
	}
	c := store.ScheduleChange{CredentialID: *credID, SyncType: *syncType}
	if given["every"] {
		f, h, err := parseEvery(*everyFlag)
		if err != nil {
			return fmt.Errorf("schedule set: --every: %w", err)
		}
		c.Frequency, c.CustomIntervalHours = &f, h
	}
	if given["at"] {
		switch {
		case strings.EqualFold(*at, "none"):
			c.ClearTimeOfDay = true
		case timeOfDay.MatchString(*at):
			c.TimeOfDay = at
		default:
			return fmt.Errorf("schedule set: --at %q: use HH:MM, 24-hour (e.g. 02:00), or none", *at)
		}
	}
	if given["timezone"] {
		if *tz == "" {
			return errors.New("schedule set: --timezone is empty: use an IANA name such as Asia/Ho_Chi_Minh")
		}
		c.Timezone = tz
	}
	if given["enabled"] || given["disabled"] {
		on := given["enabled"] && *enabled || given["disabled"] && !*disabled
		c.Enabled = &on
	}
	if len(given) == 2 {
		return errors.New("schedule set: nothing to change: give --every, --at, --timezone, --enabled or --disabled")
	}
	a, qctx, done, err := connect(ctx, e, false)
	if err != nil {
		return err
	}
	defer done()
	id, err := a.store.SetSchedule(qctx, c)
	if err != nil {
		return scheduleError("set", *credID, err)
	}
	r, err := findSchedule(qctx, a.store, id)
	if err != nil {
		fmt.Fprintf(e.stdout, "schedule %s saved\n", id)
		return nil
	}
	fmt.Fprintf(e.stdout, "schedule %s: %s %s for %s\n", id, r.SyncType, every(r), deref(r.RetailerName, r.CredentialID))
	switch {
	case !r.Enabled:
		fmt.Fprintf(e.stdout, "%s: it will not run until switched on (kvsync schedule set … --enabled)\n", state(r))
	case !r.CredentialActive:
		fmt.Fprintln(e.stdout, "the credential is inactive: the schedule will not run")
	case r.SecondsUntilNextRun != nil:
		fmt.Fprintf(e.stdout, "next run: %s (%s)\n", deref(r.NextRunLocal, "-"),
			nextRunIn(time.Duration(*r.SecondsUntilNextRun)*time.Second))
	}
	return nil
}

func findSchedule(ctx context.Context, st *store.Store, id string) (store.ScheduleStatus, error) {
	rows, err := st.Status(ctx)
	if err != nil {
		return store.ScheduleStatus{}, err
	}
	for _, r := range rows {
		if r.ScheduleID == id {
			return r, nil
		}
	}
	return store.ScheduleStatus{}, &errs.Error{Code: errs.NotFound, Message: "schedule " + id + " does not exist"}
}

func scheduleRun(ctx context.Context, e env) error {
	fs := newFlags(e, "run", scheduleUsage)
	wait := fs.Bool("wait", false, "run it here and now, with a progress line, instead of at the next tick")
	id, err := scheduleID(fs, e.args)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, e, *wait)
	if err != nil {
		return err
	}
	defer a.close()
	if !*wait {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := a.store.RunScheduleNow(qctx, id); err != nil {
			return scheduleError("run", id, err)
		}
		fmt.Fprintf(e.stdout, "schedule %s is due now: the next dispatcher tick runs it (within 5 minutes), or use --wait\n", id)
		return nil
	}
	engine, live, err := foregroundEngine(e, a)
	if err != nil {
		return err
	}
	lease := cmp.Or(time.Duration(a.cfg.LeaseSeconds)*time.Second, vocab.DefaultLease)
	cl, err := a.store.ClaimSchedule(ctx, id, a.worker, lease)
	if err != nil {
		return scheduleError("run", id, err)
	}
	fmt.Fprintf(e.stdout, "run %s: %s for credential %s (schedule %s)\n", cl.RunID, cl.SyncType, cl.CredentialID, id)
	res, err := follow(ctx, e, a.store, live, cl.RunID, func() (syncer.Result, error) { return engine.RunClaimed(ctx, cl) })
	next := ""
	if res.NextRunAt != nil {
		next = "next run in " + human(time.Until(*res.NextRunAt))
	}
	return runReport(e.stdout, "schedule run", cl.RunID, res, err, next)
}

func schedulePause(ctx context.Context, e env) error {
	fs := newFlags(e, "pause", scheduleUsage)
	reason := fs.String("reason", "", "why, shown in status and the views (default: paused by an operator)")
	id, err := scheduleID(fs, e.args)
	if err != nil {
		return err
	}
	a, qctx, done, err := connect(ctx, e, false)
	if err != nil {
		return err
	}
	defer done()
	if err := a.store.PauseSchedule(qctx, id, *reason); err != nil {
		return scheduleError("pause", id, err)
	}
	fmt.Fprintf(e.stdout, "schedule %s paused: it will not run until 'kvsync schedule resume %s'\n", id, id)
	return nil
}

func scheduleResume(ctx context.Context, e env) error {
	fs := newFlags(e, "resume", scheduleUsage)
	credID := fs.String("credential", "", "resume every paused schedule of this credential")
	var id string
	if len(e.args) > 0 && !strings.HasPrefix(e.args[0], "-") {
		var err error
		if id, err = scheduleID(fs, e.args); err != nil {
			return err
		}
	} else if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	switch {
	case id == "" && *credID == "":
		return errors.New("schedule resume: give a schedule id or --credential ID (see 'kvsync schedule list')")
	case id != "" && *credID != "":
		return errors.New("schedule resume: give a schedule id or --credential ID, not both")
	case *credID != "" && !uuidRE.MatchString(*credID):
		return fmt.Errorf("schedule resume: --credential %q is not a credential id (a UUID): see 'kvsync credentials list'", *credID)
	}
	a, qctx, done, err := connect(ctx, e, false)
	if err != nil {
		return err
	}
	defer done()
	n, err := a.store.ResumeSchedules(qctx, *credID, id)
	if err != nil {
		return scheduleError("resume", cmp.Or(id, *credID), err)
	}
	if n == 0 {
		if id != "" {
			if _, err := findSchedule(qctx, a.store, id); err != nil {
				return scheduleError("resume", id, err)
			}
			return fmt.Errorf("schedule resume: schedule %s is not paused (switch it on with 'kvsync schedule set … --enabled')", id)
		}
		return fmt.Errorf("schedule resume: credential %s has no paused schedule", *credID)
	}
	fmt.Fprintf(e.stdout, "%d schedule(s) resumed: due now, the next dispatcher tick runs them\n", n)
	return nil
}

func scheduleDelete(ctx context.Context, e env) error {
	fs := newFlags(e, "delete", scheduleUsage)
	id, err := scheduleID(fs, e.args)
	if err != nil {
		return err
	}
	a, qctx, done, err := connect(ctx, e, false)
	if err != nil {
		return err
	}
	defer done()
	if err := a.store.DeleteSchedule(qctx, id); err != nil {
		return scheduleError("delete", id, err)
	}
	fmt.Fprintf(e.stdout, "schedule %s deleted (its runs stay in the log)\n", id)
	return nil
}

// parseEvery reads hourly, daily or Nh.
func parseEvery(s string) (string, *int, error) {
	switch f := vocab.Frequency(strings.ToLower(s)); f {
	case vocab.Hourly, vocab.Daily:
		return string(f), nil, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.ToLower(s), "h"))
	if err != nil || !strings.HasSuffix(strings.ToLower(s), "h") {
		return "", nil, fmt.Errorf("%q: use hourly, daily or a number of hours such as 6h", s)
	}
	if n < 1 || n > 168 {
		return "", nil, fmt.Errorf("%q: the number of hours must be between 1 and 168", s)
	}
	return string(vocab.Custom), &n, nil
}
