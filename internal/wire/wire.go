// Package wire is the JSON bodies of kvsync's HTTP functions, written once: the handlers in functions/
// encode them and the clients (the dispatcher's fan-out, tests) decode them, so the wire format cannot
// drift between the two. The shapes are the ones the ERP frontend and the earlier edge functions use.
package wire

import (
	"github.com/kvsync/kvsync/internal/vocab"
	"time"

	"github.com/kvsync/kvsync/internal/syncer"
)

// SyncRequest is the body of POST /functions/v1/kiotviet-sync: the ERP's {credentialId, syncType,
// options: {pageSize, dateFrom}}; options.full and runId are kvsync's additions (runId: a run the
// dispatcher already claimed, for service callers only).
type SyncRequest struct {
	CredentialID string      `json:"credentialId"`
	SyncType     string      `json:"syncType"`
	RunID        string      `json:"runId,omitempty"`
	Options      SyncOptions `json:"options"`
}

// SyncOptions are a sync request's options; absent means the default.
type SyncOptions struct {
	PageSize *int   `json:"pageSize,omitempty"`
	DateFrom string `json:"dateFrom,omitempty"`
	Full     bool   `json:"full,omitempty"`
}

// SyncReply is the reply of kiotviet-sync once the run's log row is final. Error is present (possibly
// empty) whenever the run did not succeed, absent on success, as the ERP reads it.
type SyncReply struct {
	Success bool                           `json:"success"`
	Results map[string]*syncer.StreamStats `json:"results"`
	RunID   string                         `json:"runId"`
	Status  vocab.Status                   `json:"status"`
	Records int                            `json:"records"`
	Error   *string                        `json:"error,omitempty"`
}

// ErrorReply is every function's error body (httpx.WriteError): {success: false, error}.
type ErrorReply struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
}

// DispatchRequest is the body of POST /functions/v1/kiotviet-schedule-sync: {} or {limit, wait}.
type DispatchRequest struct {
	Limit *int `json:"limit,omitempty"`
	Wait  bool `json:"wait,omitempty"`
}

// DispatchedRun is one claimed run in a dispatch reply. Status, Error and Records are filled in only
// in a {wait: true} reply, for the runs that ended in time.
type DispatchedRun struct {
	RunID        string         `json:"runId"`
	ScheduleID   string         `json:"scheduleId"`
	CredentialID string         `json:"credentialId"`
	SyncType     vocab.SyncType `json:"syncType"`
	SlotAt       time.Time      `json:"slotAt"`
	Status       vocab.Status   `json:"status,omitempty"`
	Error        *string        `json:"error,omitempty"`
	Records      *int           `json:"records,omitempty"`
}

// DispatchAccepted is the 202 reply of a dispatch without wait: what was claimed, the syncs going on
// after the reply.
type DispatchAccepted struct {
	Success bool            `json:"success"`
	Claimed int             `json:"claimed"`
	Rescued int             `json:"rescued"`
	Runs    []DispatchedRun `json:"runs"`
}

// DispatchDone is the 200 reply of a dispatch with wait, after the claimed runs ended: the earlier
// system's shape {success, ran, errors, total}.
type DispatchDone struct {
	Success bool            `json:"success"`
	Ran     int             `json:"ran"`
	Errors  int             `json:"errors"`
	Total   int             `json:"total"`
	Runs    []DispatchedRun `json:"runs"`
}
