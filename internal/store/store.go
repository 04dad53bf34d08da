// Package store is kvsync's only way into the database. Every read and write is a call of one of the
// SQL functions in supabase/migrations (Supabase "RPC"), made through a Caller: pgx over a direct
// connection (the default) or PostgREST with the service-role key. The typed methods here are written
// once and work over both.
package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/redact"
	"github.com/kvsync/kvsync/internal/vocab"
)

// Arg is one named argument of an SQL function (p_run_id, p_rows, …).
type Arg struct {
	Name  string
	Value any
}

// Caller runs one SQL function by name with named arguments and returns its result as JSON: an array of
// objects for a set-returning function (set true), else the scalar's JSON. Failures come back as *Error.
type Caller interface {
	Call(ctx context.Context, fn string, args []Arg, set bool) (json.RawMessage, error)
}

// constraintCodes refines sqlError's SQLSTATE rule where a constraint's name says more than its
// state. Each entry names the rule the constraint enforces.
var constraintCodes = map[string]errs.Code{
	"kiotviet_sync_logs_one_running":             errs.Conflict, // one running run per credential
	"kiotviet_sync_schedules_credential_id_fkey": errs.NotFound, // a schedule's credential must exist
}

// sqlError is the one place a database failure becomes an errs code, by SQLSTATE (what the SQL
// functions raise: see their comments) and constraint name. pgx and PostgREST both come here, so a
// caller sees the same code whichever way the call went. The database's message never holds a secret:
// the functions only ever see ciphertext.
func sqlError(fn, state, constraint, message string, cause error) *errs.Error {
	code := errs.Internal
	switch state {
	case "23505": // unique_violation: e.g. the credential is already syncing
		code = errs.Conflict
	case "P0002", "23503": // no_data_found (unknown credential or run), foreign_key_violation
		code = errs.NotFound
	case "22023", "23514", "22P02", "23502", "22007", "22008": // bad input, with the rule in the message
		code = errs.Invalid
	case "55000": // object_not_in_prerequisite_state: inactive credential, run no longer running
		code = errs.State
	case "57P01", "57P02", "57P03": // the server shutting down or starting: try again
		code = errs.Unavailable
	}
	if strings.HasPrefix(state, "08") { // connection exceptions
		code = errs.Unavailable
	}
	if c, ok := constraintCodes[constraint]; ok {
		code = c
	}
	return &errs.Error{Op: fn, Code: code, SQLState: state, Constraint: constraint, Message: message, Err: cause}
}

// Store is the typed surface over a Caller.
type Store struct {
	c Caller
}

// New wraps a Caller.
func New(c Caller) *Store { return &Store{c: c} }

func (s *Store) call(ctx context.Context, fn string, out any, set bool, args ...Arg) error {
	raw, err := s.c.Call(ctx, fn, args, set)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &errs.Error{Op: fn, Code: errs.Internal, Message: "decode result: " + err.Error(), Err: err}
	}
	return nil
}

// Claim is one due schedule claimed for this worker, with its running log row.
type Claim struct {
	RunID        string         `json:"run_id"`
	ScheduleID   string         `json:"schedule_id"`
	CredentialID string         `json:"credential_id"`
	SyncType     vocab.SyncType `json:"sync_type"`
	SlotAt       time.Time      `json:"slot_at"`
}

// ClaimDue claims up to limit due schedules (kiotviet_claim_due).
func (s *Store) ClaimDue(ctx context.Context, worker string, limit int, lease time.Duration) ([]Claim, error) {
	var out []Claim
	err := s.call(ctx, "kiotviet_claim_due", &out, true,
		Arg{"p_worker", worker}, Arg{"p_limit", limit}, Arg{"p_lease_seconds", leaseSeconds(lease)})
	return out, err
}

// Rescued is a run that lost its lease and was marked failed.
type Rescued struct {
	RunID        string `json:"run_id"`
	CredentialID string `json:"credential_id"`
	Worker       string `json:"worker"`
}

// RescueExpired fails the runs whose lease expired (kiotviet_rescue_expired).
func (s *Store) RescueExpired(ctx context.Context) ([]Rescued, error) {
	var out []Rescued
	err := s.call(ctx, "kiotviet_rescue_expired", &out, true)
	return out, err
}

// StartRun opens a running log row outside the schedule (kiotviet_start_run). A credential that is
// already syncing gives an *Error with errs.Conflict.
func (s *Store) StartRun(ctx context.Context, credentialID string, syncType vocab.SyncType, trigger vocab.Trigger, worker string, lease time.Duration, options json.RawMessage) (string, error) {
	if len(options) == 0 {
		options = json.RawMessage(`{}`)
	}
	var id string
	err := s.call(ctx, "kiotviet_start_run", &id, false,
		Arg{"p_credential_id", credentialID}, Arg{"p_sync_type", syncType}, Arg{"p_trigger", trigger},
		Arg{"p_worker", worker}, Arg{"p_lease_seconds", leaseSeconds(lease)}, Arg{"p_options", options})
	return id, err
}

// Progress is what a run's heartbeat publishes in kiotviet_sync_logs.progress (and so over Realtime):
// the stream in progress, how many of its items are done out of KiotViet's total for it, its pages, and
// the records of every stream so far. Total is 0 until KiotViet has said it. The engine writes it
// (Heartbeat) and RunLog and ScheduleStatus read it back as the same type.
type Progress struct {
	Stream  string `json:"stream"`
	Done    int    `json:"done"`
	Total   int    `json:"total"`
	Pages   int    `json:"pages"`
	Records int    `json:"records"`
}

// UnmarshalJSON reads a progress column leniently: a value of another shape (written by an older
// kvsync, or by hand) reads as no progress rather than failing the whole row, and every row of a
// status listing with it.
func (p *Progress) UnmarshalJSON(b []byte) error {
	type plain Progress
	var v plain
	if json.Unmarshal(b, &v) == nil {
		*p = Progress(v)
	} else {
		*p = Progress{}
	}
	return nil
}

// Heartbeat extends the lease and publishes progress; false means the run is no longer this worker's.
func (s *Store) Heartbeat(ctx context.Context, runID, worker string, progress Progress, lease time.Duration) (bool, error) {
	p, err := json.Marshal(progress)
	if err != nil {
		return false, err
	}
	var ok bool
	err = s.call(ctx, "kiotviet_heartbeat", &ok, false, Arg{"p_run_id", runID}, Arg{"p_worker", worker},
		Arg{"p_progress", json.RawMessage(p)}, Arg{"p_lease_seconds", leaseSeconds(lease)})
	return ok, err
}

// StreamState is a stream's cursor and last full reconcile.
type StreamState struct {
	Stream     string     `json:"stream"`
	Cursor     *time.Time `json:"cursor"`
	LastFullAt *time.Time `json:"last_full_at"`
}

// State returns every stream's state for a credential, by stream name.
func (s *Store) State(ctx context.Context, credentialID string) (map[string]StreamState, error) {
	var rows []StreamState
	if err := s.call(ctx, "kiotviet_get_state", &rows, true, Arg{"p_credential_id", credentialID}); err != nil {
		return nil, err
	}
	out := make(map[string]StreamState, len(rows))
	for _, r := range rows {
		out[r.Stream] = r
	}
	return out, nil
}

// Applied is what one page wrote: rows changed (products_full, categories …), legacy product rows,
// inventory rows, and rows deleted.
type Applied struct {
	Written   int  `json:"written"`
	Products  int  `json:"products"`
	Inventory int  `json:"inventory"`
	Deleted   int  `json:"deleted"`
	Swept     bool `json:"swept"`
	Seen      int  `json:"seen"`
}

// Page is one page to apply: rows already shaped as the SQL function reads them.
type Page struct {
	RunID        string
	CredentialID string
	Rows         json.RawMessage
	RemovedIDs   []int64
	Cursor       *time.Time
	Full         bool
}

func (p Page) args() []Arg {
	removed := p.RemovedIDs
	if removed == nil {
		removed = []int64{}
	}
	return []Arg{{"p_run_id", p.RunID}, {"p_credential_id", p.CredentialID}, {"p_rows", p.Rows},
		{"p_removed_ids", removed}, {"p_cursor", p.Cursor}, {"p_full", p.Full}}
}

// ApplyCategories writes one categories page in one transaction.
func (s *Store) ApplyCategories(ctx context.Context, p Page) (Applied, error) {
	var a Applied
	err := s.call(ctx, "kiotviet_apply_categories", &a, false, p.args()...)
	return a, err
}

// ApplyProducts writes one products page (products_full, products, inventory) in one transaction.
func (s *Store) ApplyProducts(ctx context.Context, p Page) (Applied, error) {
	var a Applied
	err := s.call(ctx, "kiotviet_apply_products", &a, false, p.args()...)
	return a, err
}

// ApplyStock merges one /productOnHands page.
func (s *Store) ApplyStock(ctx context.Context, runID, credentialID string, rows json.RawMessage) (Applied, error) {
	var a Applied
	err := s.call(ctx, "kiotviet_apply_stock", &a, false,
		Arg{"p_run_id", runID}, Arg{"p_credential_id", credentialID}, Arg{"p_rows", rows})
	return a, err
}

// ApplyBranches upserts the branches and deactivates the removed ones (their stock rows go).
func (s *Store) ApplyBranches(ctx context.Context, runID, credentialID string, rows json.RawMessage, removed []int64) (Applied, error) {
	var a Applied
	if removed == nil {
		removed = []int64{}
	}
	err := s.call(ctx, "kiotviet_apply_branches", &a, false,
		Arg{"p_run_id", runID}, Arg{"p_credential_id", credentialID}, Arg{"p_rows", rows}, Arg{"p_removed_ids", removed})
	return a, err
}

// ApplyAttributes replaces the attributes with KiotViet's whole list.
func (s *Store) ApplyAttributes(ctx context.Context, runID, credentialID string, rows json.RawMessage) (Applied, error) {
	var a Applied
	err := s.call(ctx, "kiotviet_apply_attributes", &a, false,
		Arg{"p_run_id", runID}, Arg{"p_credential_id", credentialID}, Arg{"p_rows", rows})
	return a, err
}

// Sweep deletes what a complete full pass did not see (kiotviet_sweep); Swept false means it saw fewer
// ids than KiotViet's total and deleted nothing.
func (s *Store) Sweep(ctx context.Context, runID, credentialID, stream string, total int) (Applied, error) {
	var a Applied
	err := s.call(ctx, "kiotviet_sweep", &a, false, Arg{"p_run_id", runID}, Arg{"p_credential_id", credentialID},
		Arg{"p_stream", stream}, Arg{"p_total", total})
	return a, err
}

// Finish is a run's outcome.
type Finish struct {
	Status   vocab.Status // success | partial | failed | skipped
	Records  int
	Stats    any
	APICalls int64
	Error    string
}

// FinishRun closes the run's log row and moves its schedule on; it returns the schedule's next run.
func (s *Store) FinishRun(ctx context.Context, runID string, f Finish) (*time.Time, error) {
	stats, err := json.Marshal(f.Stats)
	if err != nil {
		return nil, err
	}
	var errText *string
	if f.Error != "" {
		// the ERP shows it: no URL token or key from an error's text goes into the row
		msg := redact.String(f.Error)
		errText = &msg
	}
	var next *time.Time
	err = s.call(ctx, "kiotviet_finish_run", &next, false, Arg{"p_run_id", runID}, Arg{"p_status", f.Status},
		Arg{"p_records", f.Records}, Arg{"p_stats", json.RawMessage(stats)}, Arg{"p_api_calls", f.APICalls},
		Arg{"p_error", errText})
	return next, err
}

// Credential is a stored KiotViet connection, secrets still encrypted.
type Credential struct {
	ID                    string     `json:"id"`
	UserID                *string    `json:"user_id"`
	RetailerName          string     `json:"retailer_name"`
	ClientID              string     `json:"client_id"`
	EncryptedClientSecret *string    `json:"encrypted_client_secret"`
	EncryptedToken        string     `json:"encrypted_token"`
	TokenExpiresAt        *time.Time `json:"token_expires_at"`
	TokenVersion          int64      `json:"token_version"`
	IsActive              bool       `json:"is_active"`
	CreatedAt             *time.Time `json:"created_at"`
}

// Credential reads one credential; an unknown id gives errs.NotFound.
func (s *Store) Credential(ctx context.Context, id string) (Credential, error) {
	var rows []Credential
	if err := s.call(ctx, "kiotviet_get_credential", &rows, true, Arg{"p_id", id}); err != nil {
		return Credential{}, err
	}
	if len(rows) == 0 {
		return Credential{}, &errs.Error{Op: "kiotviet_get_credential", Code: errs.NotFound, Message: "credential " + id + " does not exist"}
	}
	return rows[0], nil
}

// Credentials lists every credential, newest first, without secrets.
func (s *Store) Credentials(ctx context.Context) ([]Credential, error) {
	var rows []Credential
	err := s.call(ctx, "kiotviet_list_credentials", &rows, true)
	return rows, err
}

// StoreToken stores a refreshed token if the version still matches (compare and swap); ok false means
// another process stored one first.
func (s *Store) StoreToken(ctx context.Context, id, encryptedToken string, expiresAt time.Time, expectedVersion int64) (int64, bool, error) {
	var v *int64
	err := s.call(ctx, "kiotviet_store_token", &v, false, Arg{"p_id", id}, Arg{"p_encrypted_token", encryptedToken},
		Arg{"p_expires_at", expiresAt}, Arg{"p_expected_version", expectedVersion})
	if err != nil || v == nil {
		return 0, false, err
	}
	return *v, true, nil
}

// NewCredential is a connection checked live with KiotViet, its secrets encrypted for row ID.
type NewCredential struct {
	ID, RetailerName, ClientID, EncryptedClientSecret, EncryptedToken string
	UserID                                                            *string
	TokenExpiresAt                                                    time.Time
}

// SaveCredential stores it as the owner's active credential, deactivating the older ones and moving
// their schedules to it.
func (s *Store) SaveCredential(ctx context.Context, c NewCredential) error {
	return s.call(ctx, "kiotviet_save_credential", nil, false, Arg{"p_id", c.ID}, Arg{"p_user_id", c.UserID},
		Arg{"p_retailer_name", c.RetailerName}, Arg{"p_client_id", c.ClientID},
		Arg{"p_encrypted_client_secret", c.EncryptedClientSecret}, Arg{"p_encrypted_token", c.EncryptedToken},
		Arg{"p_token_expires_at", c.TokenExpiresAt})
}

// DeactivateCredential stops a credential from being synced; false when there is no such credential.
func (s *Store) DeactivateCredential(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := s.call(ctx, "kiotviet_deactivate_credential", &ok, false, Arg{"p_id", id})
	return ok, err
}

// ReencryptCredential replaces a credential's ciphertexts unless its token changed meanwhile.
func (s *Store) ReencryptCredential(ctx context.Context, id string, encSecret *string, encToken string, expectedVersion int64) (bool, error) {
	var ok bool
	err := s.call(ctx, "kiotviet_reencrypt_credential", &ok, false, Arg{"p_id", id},
		Arg{"p_encrypted_client_secret", encSecret}, Arg{"p_encrypted_token", encToken},
		Arg{"p_expected_version", expectedVersion})
	return ok, err
}

// Schedule is what an admin sets for one credential and sync type.
type Schedule struct {
	CredentialID, SyncType, Frequency string
	CustomIntervalHours               *int
	Enabled                           bool
	TimeOfDay                         *string // "HH:MM", local to Timezone
	Timezone                          string
}

// ScheduleChange changes a schedule (kiotviet_set_schedule): nil fields keep their value; a new schedule
// needs Frequency. ClearTimeOfDay removes a time of day.
type ScheduleChange struct {
	CredentialID, SyncType string
	Frequency              *string
	CustomIntervalHours    *int
	Enabled                *bool
	TimeOfDay              *string // "HH:MM", local to the schedule's zone
	ClearTimeOfDay         bool
	Timezone               *string
}

// SetSchedule creates or changes a schedule, changing only what is given; it returns its id.
func (s *Store) SetSchedule(ctx context.Context, c ScheduleChange) (string, error) {
	var id string
	err := s.call(ctx, "kiotviet_set_schedule", &id, false, Arg{"p_credential_id", c.CredentialID},
		Arg{"p_sync_type", c.SyncType}, Arg{"p_frequency", c.Frequency}, Arg{"p_custom_interval_hours", c.CustomIntervalHours},
		Arg{"p_enabled", c.Enabled}, Arg{"p_time_of_day", c.TimeOfDay}, Arg{"p_clear_time_of_day", c.ClearTimeOfDay},
		Arg{"p_timezone", c.Timezone})
	return id, err
}

// RunScheduleNow makes a schedule due now (kiotviet_run_schedule_now).
func (s *Store) RunScheduleNow(ctx context.Context, scheduleID string) error {
	var at *time.Time
	return s.call(ctx, "kiotviet_run_schedule_now", &at, false, Arg{"p_schedule_id", scheduleID})
}

// ClaimSchedule claims one schedule for this worker now (kiotviet_claim_schedule).
func (s *Store) ClaimSchedule(ctx context.Context, scheduleID, worker string, lease time.Duration) (Claim, error) {
	var out []Claim
	err := s.call(ctx, "kiotviet_claim_schedule", &out, true, Arg{"p_schedule_id", scheduleID}, Arg{"p_worker", worker},
		Arg{"p_lease_seconds", leaseSeconds(lease)})
	if err == nil && len(out) != 1 {
		err = &errs.Error{Op: "kiotviet_claim_schedule", Code: errs.Internal, Message: "claimed nothing"}
	}
	if err != nil {
		return Claim{}, err
	}
	return out[0], nil
}

// PauseSchedule pauses one schedule with a reason (kiotviet_pause_schedule).
func (s *Store) PauseSchedule(ctx context.Context, scheduleID, reason string) error {
	var ok bool
	return s.call(ctx, "kiotviet_pause_schedule", &ok, false, Arg{"p_schedule_id", scheduleID}, Arg{"p_reason", nullable(reason)})
}

// DeleteSchedule deletes one schedule (kiotviet_delete_schedule); its runs stay in the log.
func (s *Store) DeleteSchedule(ctx context.Context, scheduleID string) error {
	var ok bool
	return s.call(ctx, "kiotviet_delete_schedule", &ok, false, Arg{"p_schedule_id", scheduleID})
}

// StaleRun is a running run whose worker has not beaten for a while (kiotviet_stale_runs).
type StaleRun struct {
	RunID                 string     `json:"run_id"`
	CredentialID          *string    `json:"credential_id"`
	RetailerName          *string    `json:"retailer_name"`
	SyncType              string     `json:"sync_type"`
	Worker                *string    `json:"worker"`
	HeartbeatAt           *time.Time `json:"heartbeat_at"`
	LeaseExpiresAt        *time.Time `json:"lease_expires_at"`
	SecondsSinceHeartbeat int64      `json:"seconds_since_heartbeat"`
}

// StaleRuns lists running runs without a heartbeat for longer than after.
func (s *Store) StaleRuns(ctx context.Context, after time.Duration) ([]StaleRun, error) {
	var out []StaleRun
	err := s.call(ctx, "kiotviet_stale_runs", &out, true, Arg{"p_seconds", leaseSeconds(after)})
	return out, err
}

// PauseSchedules pauses every enabled schedule of a credential with the reason (kiotviet_pause_schedules);
// it returns how many it paused.
func (s *Store) PauseSchedules(ctx context.Context, credentialID, reason string) (int, error) {
	var n int
	err := s.call(ctx, "kiotviet_pause_schedules", &n, false, Arg{"p_credential_id", credentialID}, Arg{"p_reason", reason})
	return n, err
}

// ResumeSchedules resumes paused schedules: one (scheduleID) or all of a credential (credentialID); the
// other may be empty. It returns how many it resumed; they are due at once.
func (s *Store) ResumeSchedules(ctx context.Context, credentialID, scheduleID string) (int, error) {
	var n int
	err := s.call(ctx, "kiotviet_resume_schedules", &n, false, Arg{"p_credential_id", nullable(credentialID)},
		Arg{"p_schedule_id", nullable(scheduleID)})
	return n, err
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// UpsertSchedule creates or changes a schedule; the database computes its next run.
func (s *Store) UpsertSchedule(ctx context.Context, sc Schedule) (string, error) {
	var id string
	tz := sc.Timezone
	if tz == "" {
		tz = "Asia/Ho_Chi_Minh"
	}
	err := s.call(ctx, "kiotviet_upsert_schedule", &id, false, Arg{"p_credential_id", sc.CredentialID},
		Arg{"p_sync_type", sc.SyncType}, Arg{"p_frequency", sc.Frequency},
		Arg{"p_custom_interval_hours", sc.CustomIntervalHours}, Arg{"p_enabled", sc.Enabled},
		Arg{"p_time_of_day", sc.TimeOfDay}, Arg{"p_timezone", tz})
	return id, err
}

func leaseSeconds(d time.Duration) int {
	if d <= 0 {
		d = vocab.DefaultLease
	}
	return int((d + time.Second - 1) / time.Second)
}

// CallerIsAdmin tells whether the user behind these JWT claims is an ERP admin, by the same rule as the
// RLS policies (kiotviet_caller_is_admin).
func (s *Store) CallerIsAdmin(ctx context.Context, claims map[string]any) (bool, error) {
	raw, err := json.Marshal(claims)
	if err != nil {
		return false, err
	}
	var ok bool
	err = s.call(ctx, "kiotviet_caller_is_admin", &ok, false, Arg{"p_claims", json.RawMessage(raw)})
	return ok, err
}

// ScheduleStatus is one row of the kiotviet_schedule_status view.
type ScheduleStatus struct {
	ScheduleID          string     `json:"schedule_id"`
	CredentialID        string     `json:"credential_id"`
	RetailerName        *string    `json:"retailer_name"`
	CredentialActive    bool       `json:"credential_active"`
	SyncType            string     `json:"sync_type"`
	Frequency           string     `json:"frequency"`
	CustomIntervalHours *int       `json:"custom_interval_hours"`
	TimeOfDay           *string    `json:"time_of_day"`
	Timezone            string     `json:"timezone"`
	Enabled             bool       `json:"enabled"`
	IsDue               bool       `json:"is_due"`
	NextRunAt           *time.Time `json:"next_run_at"`
	SecondsUntilNextRun *int64     `json:"seconds_until_next_run"`
	LastRunAt           *time.Time `json:"last_run_at"`
	LastStatus          *string    `json:"last_status"`
	LastError           *string    `json:"last_error"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	RunningLogID        *string    `json:"running_log_id"`
	RunningStartedAt    *time.Time `json:"running_started_at"`
	RunningProgress     *Progress  `json:"running_progress"` // nil unless a run is going on
	PausedReason        *string    `json:"paused_reason"`
	PausedAt            *time.Time `json:"paused_at"`
	LastSlotAt          *time.Time `json:"last_slot_at"`
	NextRetryAt         *time.Time `json:"next_retry_at"`
	CredentialBusyLogID *string    `json:"credential_busy_log_id"` // a run of another schedule holds the credential
	NextRunLocal        *string    `json:"next_run_local"`         // "2026-12-03 02:00 Asia/Ho_Chi_Minh"
	LastRunLocal        *string    `json:"last_run_local"`
}

// Status lists every schedule with its state (kiotviet_status).
func (s *Store) Status(ctx context.Context) ([]ScheduleStatus, error) {
	var rows []ScheduleStatus
	err := s.call(ctx, "kiotviet_status", &rows, true)
	return rows, err
}

// RunLog is a run's log row.
type RunLog struct {
	ID            string          `json:"id"`
	CredentialID  *string         `json:"credential_id"`
	SyncType      vocab.SyncType  `json:"sync_type"`
	Status        vocab.Status    `json:"status"`
	Trigger       vocab.Trigger   `json:"trigger"`
	RecordsSynced int             `json:"records_synced"`
	APICalls      int64           `json:"api_calls"`
	Stats         json.RawMessage `json:"stats"`
	Progress      Progress        `json:"progress"`
	ErrorMessage  *string         `json:"error_message"`
	StartedAt     time.Time       `json:"started_at"`
	CompletedAt   *time.Time      `json:"completed_at"`
}

// Run reads one run's log row.
func (s *Store) Run(ctx context.Context, runID string) (RunLog, error) {
	var rows []RunLog
	if err := s.call(ctx, "kiotviet_get_run", &rows, true, Arg{"p_run_id", runID}); err != nil {
		return RunLog{}, err
	}
	if len(rows) == 0 {
		return RunLog{}, &errs.Error{Op: "kiotviet_get_run", Code: errs.NotFound, Message: "run " + runID + " does not exist"}
	}
	return rows[0], nil
}

// APIGrant is calls taken from a credential's shared API budget (kiotviet_take_api_calls): N calls under
// grant ID, or none until ResumesAt.
type APIGrant struct {
	ID        *int64     `json:"grant_id"`
	N         int        `json:"granted"`
	ResumesAt *time.Time `json:"resumes_at"`
}

// TakeAPICalls takes up to want calls from the credential's budget of limitPerHour calls in any hour,
// shared with every other process.
func (s *Store) TakeAPICalls(ctx context.Context, credentialID string, want, limitPerHour int) (APIGrant, error) {
	var rows []APIGrant
	if err := s.call(ctx, "kiotviet_take_api_calls", &rows, true, Arg{"p_credential_id", credentialID},
		Arg{"p_want", want}, Arg{"p_limit_per_hour", limitPerHour}); err != nil {
		return APIGrant{}, err
	}
	if len(rows) == 0 {
		return APIGrant{}, &errs.Error{Op: "kiotviet_take_api_calls", Code: errs.Internal, Message: "no answer"}
	}
	return rows[0], nil
}

// ReturnAPICalls gives back the unused calls of a grant (kiotviet_return_api_calls).
func (s *Store) ReturnAPICalls(ctx context.Context, grantID int64, unused int) error {
	return s.call(ctx, "kiotviet_return_api_calls", nil, false, Arg{"p_grant_id", grantID}, Arg{"p_unused", unused})
}
