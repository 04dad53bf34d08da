package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
)

const scheduleUsage = `
Usage: kvsync schedule set --credential ID --type T --every hourly|daily|Nh [--at HH:MM] [--timezone TZ] [--disabled]

Creates or changes the schedule of one credential and sync type (one schedule per pair). The database
computes the next run (one period from now, or the next --at time in --timezone) and this prints it.
--every 6h is every six hours (1-168). --at pins the runs to a time of day: daily --at 02:00 runs at
02:00 every day; 6h --at 02:00 at 02:00, 08:00, 14:00, 20:00; 5h --at 02:00 at 02:00, 07:00, … 22:00,
then 03:00 the next day (any period takes a time of day).`

func cmdSchedule(ctx context.Context, e env) error {
	if len(e.args) == 0 || e.args[0] == "-h" || e.args[0] == "--help" || e.args[0] == "help" {
		fmt.Fprintln(e.stderr, strings.TrimSpace(scheduleUsage))
		if len(e.args) == 0 {
			return errors.New("schedule: say set (and see 'kvsync status' for the schedules)")
		}
		return nil
	}
	if e.args[0] != "set" {
		return fmt.Errorf("schedule: unknown subcommand %q: use set ('kvsync status' lists the schedules)", e.args[0])
	}
	e.args = e.args[1:]
	fs := newFlags(e, "schedule set", scheduleUsage)
	credID := fs.String("credential", "", "credential id (see 'kvsync credentials list')")
	syncType := fs.String("type", "", "sync type: "+strings.Join(syncTypes(), ", "))
	everyFlag := fs.String("every", "", "hourly, daily, or Nh for every N hours (1-168)")
	at := fs.String("at", "", "time of day HH:MM the runs are pinned to (in --timezone)")
	tz := fs.String("timezone", "Asia/Ho_Chi_Minh", "IANA time zone of --at")
	disabled := fs.Bool("disabled", false, "keep the schedule but do not run it")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	if *credID == "" || *syncType == "" || *everyFlag == "" {
		return errors.New("schedule set: --credential, --type and --every are required (see --help)")
	}
	if _, ok := syncer.SyncTypes[*syncType]; !ok {
		return fmt.Errorf("schedule set: --type %q is not one of %s", *syncType, strings.Join(syncTypes(), ", "))
	}
	sc := store.Schedule{CredentialID: *credID, SyncType: *syncType, Enabled: !*disabled, Timezone: *tz}
	var err error
	if sc.Frequency, sc.CustomIntervalHours, err = parseEvery(*everyFlag); err != nil {
		return fmt.Errorf("schedule set: --every: %w", err)
	}
	if *at != "" {
		if !timeOfDay.MatchString(*at) {
			return fmt.Errorf("schedule set: --at %q: use HH:MM, 24-hour (e.g. 02:00)", *at)
		}
		sc.TimeOfDay = at
	}
	a, err := newApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.close()
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := a.store.UpsertSchedule(qctx, sc)
	if err != nil {
		switch store.CodeOf(err) {
		case store.CodeInvalid:
			return fmt.Errorf("schedule set: %w", err)
		case store.CodeNotFound:
			return fmt.Errorf("schedule set: no credential %s: see 'kvsync credentials list'", *credID)
		}
		if strings.Contains(err.Error(), "foreign key") {
			return fmt.Errorf("schedule set: no credential %s: see 'kvsync credentials list'", *credID)
		}
		return fmt.Errorf("schedule set: %w", err)
	}
	rows, err := a.store.Status(qctx)
	if err != nil {
		return fmt.Errorf("schedule set: saved schedule %s, but could not read it back: %w", id, err)
	}
	for _, r := range rows {
		if r.ScheduleID != id {
			continue
		}
		fmt.Fprintf(e.stdout, "schedule %s: %s %s for %s\n", id, r.SyncType, every(r), deref(r.RetailerName, r.CredentialID))
		switch {
		case !r.Enabled:
			fmt.Fprintln(e.stdout, "disabled: it will not run until set again without --disabled")
		case !r.CredentialActive:
			fmt.Fprintln(e.stdout, "the credential is inactive: the schedule will not run")
		case r.NextRunAt != nil && r.SecondsUntilNextRun != nil:
			fmt.Fprintf(e.stdout, "next run: %s (%s)\n", r.NextRunAt.Local().Format("2006-01-02 15:04 MST"),
				nextRunIn(time.Duration(*r.SecondsUntilNextRun)*time.Second))
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "schedule %s saved\n", id)
	return nil
}

var timeOfDay = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// parseEvery reads hourly, daily or Nh.
func parseEvery(s string) (string, *int, error) {
	switch strings.ToLower(s) {
	case "hourly":
		return "hourly", nil, nil
	case "daily":
		return "daily", nil, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.ToLower(s), "h"))
	if err != nil || !strings.HasSuffix(strings.ToLower(s), "h") {
		return "", nil, fmt.Errorf("%q: use hourly, daily or a number of hours such as 6h", s)
	}
	if n < 1 || n > 168 {
		return "", nil, fmt.Errorf("%q: the number of hours must be between 1 and 168", s)
	}
	return "custom", &n, nil
}
