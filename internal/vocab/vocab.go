// Package vocab is the words kvsync's Go and its SQL share, each defined once: the sync types a
// schedule or request may name, the streams they run, a run's statuses and triggers, and a schedule's
// frequencies. Each list must equal its SQL check constraint (vocab_test checks against a migrated
// database), so adding a word means a migration and a line here.
package vocab

import "time"

// DefaultLease is how long a run stays its worker's without a heartbeat, unless KVSYNC_LEASE_SECONDS
// says otherwise; the SQL functions' p_lease_seconds default (120) is the same value.
const DefaultLease = 2 * time.Minute

// SyncType is what a schedule or a sync request asks for (kiotviet_sync_schedules_sync_type_check).
type SyncType string

// The sync types.
const (
	Categories   SyncType = "categories"
	Products     SyncType = "products"
	Inventory    SyncType = "inventory"
	ProductsFull SyncType = "products_full"
	Attributes   SyncType = "attributes"
	All          SyncType = "all"
)

// SyncTypes is every sync type, in the order the ERP and the SQL list them.
var SyncTypes = []SyncType{Categories, Products, Inventory, ProductsFull, Attributes, All}

// Valid tells whether t is one of SyncTypes.
func (t SyncType) Valid() bool {
	for _, v := range SyncTypes {
		if v == t {
			return true
		}
	}
	return false
}

// Status is a run's status (kiotviet_sync_logs_status_check).
type Status string

// The run statuses: running until the one finish writes one of the others.
const (
	Running Status = "running"
	Success Status = "success"
	Partial Status = "partial" // some streams failed; what committed stays
	Failed  Status = "failed"
	Skipped Status = "skipped" // nothing to do (e.g. its slot had passed)
)

// Statuses is every run status.
var Statuses = []Status{Running, Success, Partial, Failed, Skipped}

// Failing tells whether a run with this status counts against its schedule's health (alerts, backoff).
func (s Status) Failing() bool { return s == Failed || s == Partial }

// Trigger is what started a run (kiotviet_sync_logs_trigger_check).
type Trigger string

// The triggers.
const (
	Cron    Trigger = "cron"    // claimed by the dispatcher from a due schedule
	Manual  Trigger = "manual"  // an admin in the ERP or the CLI
	API     Trigger = "api"     // a service caller (cron secret or service role) without a claimed run
	Webhook Trigger = "webhook" // a KiotViet webhook
)

// Triggers is every trigger.
var Triggers = []Trigger{Cron, Manual, API, Webhook}

// Frequency is a schedule's period kind (kiotviet_sync_schedules_frequency_check).
type Frequency string

// The frequencies; custom takes custom_interval_hours.
const (
	Hourly Frequency = "hourly"
	Daily  Frequency = "daily"
	Custom Frequency = "custom"
)

// Frequencies is every frequency.
var Frequencies = []Frequency{Hourly, Daily, Custom}

// Stream is one kind of KiotViet data a run reads, as named in run stats, replies and
// kiotviet_sync_state.
type Stream string

// The streams.
const (
	StreamCategories Stream = "categories"
	StreamProducts   Stream = "products"
	StreamBranches   Stream = "branches"
	StreamStock      Stream = "inventory"
	StreamAttributes Stream = "attributes"
)

// Streams is what each sync type runs, in order. products and products_full are the same work: one
// /products fetch feeds every product table.
var Streams = map[SyncType][]Stream{
	Categories:   {StreamCategories},
	Products:     {StreamCategories, StreamProducts},
	ProductsFull: {StreamCategories, StreamProducts},
	Inventory:    {StreamBranches, StreamStock},
	Attributes:   {StreamAttributes},
	All:          {StreamCategories, StreamProducts, StreamAttributes},
}

// Names joins a list for a message: "categories, products, inventory, …".
func Names[T ~string](list []T) string {
	s := ""
	for i, v := range list {
		if i > 0 {
			s += ", "
		}
		s += string(v)
	}
	return s
}
