package alert

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html"
	"strings"
	"time"
)

// Kinds of event (kiotviet_alert_events.kind).
const (
	KindFailing     = "failing"
	KindRecovered   = "recovered"
	KindPaused      = "paused"
	KindRunningLong = "running_long"
	KindStale       = "stale"
	// KindWebhooksStopped: a credential that was receiving KiotViet webhooks got none for a while; its
	// recovery is KindRecovered with PreviousState "webhooks_stopped".
	KindWebhooksStopped = "webhooks_stopped"
	KindTest            = "test"
)

// webhooksResumed is the recovery of KindWebhooksStopped, in the words tables.
const webhooksResumed = "webhooks_resumed"

// Event is one change of state, as kiotviet_alert_scan raised it.
type Event struct {
	ID        string    `json:"event_id"`
	Kind      string    `json:"kind"`
	Details   Details   `json:"details"`
	CreatedAt time.Time `json:"created_at"`
}

// Details is what the database knew when the state changed; every field is optional.
type Details struct {
	RetailerName   string     `json:"retailer_name"`
	SyncType       string     `json:"sync_type"`
	Stream         string     `json:"stream"`
	Error          string     `json:"error"`
	Failures       int        `json:"failures"`
	FailingSince   *time.Time `json:"failing_since"`
	NextRunAt      *time.Time `json:"next_run_at"`
	LastSuccessAt  *time.Time `json:"last_success_at"`
	StartedAt      *time.Time `json:"started_at"`
	RunningSeconds float64    `json:"running_seconds"`
	UsualSeconds   float64    `json:"usual_seconds"`
	StaleSeconds   float64    `json:"stale_seconds"`
	PausedAt       *time.Time `json:"paused_at"`
	PreviousState  string     `json:"previous_state"`
	Since          *time.Time `json:"since"`
	Worker         string     `json:"worker"`
	CredentialID   string     `json:"credential_id"`
	LastReceivedAt *time.Time `json:"last_received_at"`
	StoppedSeconds float64    `json:"stopped_seconds"`
	InactiveTypes  []string   `json:"inactive_types"`
}

// Message is an alert rendered for people: a subject (email, the first line elsewhere), the plain text,
// and the same as simple HTML for email.
type Message struct {
	Subject string
	Text    string
	HTML    string
}

// vietnam is the shop's clock: Vietnam has one time zone and no daylight saving.
var vietnam = time.FixedZone("ICT", 7*3600)

type words struct {
	shop, syncType, stream, problem, since, tries, nextTry, lastOK, todo, started, usual, never string
	lastHook, quietFor, disabled                                                                string
	subject                                                                                     map[string]string
	headline                                                                                    map[string]string
	todoFor                                                                                     map[string]string
	types                                                                                       map[string]string
	causes                                                                                      map[cause]string
	causeTodo                                                                                   map[cause]string
	tz                                                                                          string
	minutes                                                                                     func(time.Duration) string
}

type cause int

const (
	causeOther cause = iota
	causeCredentials
	causeRateLimit
	causeUnavailable
	causeWorkerStopped
	causeDatabase
)

var vi = words{
	shop: "Cửa hàng", syncType: "Loại đồng bộ", stream: "Dữ liệu", problem: "Sự cố", since: "Từ lúc",
	tries: "Số lần thử thất bại liên tiếp", nextTry: "Lần thử tiếp theo", lastOK: "Lần đồng bộ thành công gần nhất",
	todo: "Cần làm", started: "Bắt đầu chạy", usual: "Thời gian thường", never: "chưa có", tz: "giờ Việt Nam",
	lastHook: "Sự kiện webhook gần nhất", quietFor: "Ngưỡng cảnh báo", disabled: "KiotViet đã tắt webhook",
	subject: map[string]string{
		KindFailing:         "Đồng bộ %s của %s đang lỗi",
		KindRecovered:       "Đồng bộ %s của %s đã hoạt động lại",
		KindPaused:          "Đồng bộ %s của %s đã tạm dừng",
		KindRunningLong:     "Đồng bộ %s của %s chạy lâu bất thường",
		KindStale:           "Dữ liệu %s của %s chưa được cập nhật",
		KindWebhooksStopped: "KiotViet đã ngừng gửi webhook cho %s",
		webhooksResumed:     "KiotViet đã gửi webhook lại cho %s",
		KindTest:            "Thử kênh cảnh báo",
	},
	headline: map[string]string{
		KindRecovered:       "Lần đồng bộ gần nhất đã thành công; không cần làm gì thêm.",
		"resumed":           "Lịch đã được bật lại; kvsync sẽ chạy ngay và báo nếu vẫn lỗi.",
		KindPaused:          "kvsync đã ngừng chạy lịch này vì KiotViet từ chối vĩnh viễn; lịch sẽ không tự chạy lại.",
		KindRunningLong:     "Lần chạy hiện tại lâu hơn nhiều so với bình thường.",
		KindStale:           "Không có lần đồng bộ thành công nào trong thời gian dài.",
		KindWebhooksStopped: "Cửa hàng này đã nhận webhook từ KiotViet, nhưng lâu rồi không nhận được sự kiện nào. Lịch đồng bộ vẫn chạy nên dữ liệu vẫn đúng, chỉ cập nhật chậm hơn.",
		webhooksResumed:     "Webhook từ KiotViet đã đến lại; thay đổi trong KiotViet lại được cập nhật trong vài giây.",
		KindTest:            "Đây là tin nhắn thử từ kvsync (kvsync alerts test). Nếu bạn đọc được, kênh này hoạt động.",
	},
	todoFor: map[string]string{
		KindPaused:          "Kiểm tra kết nối KiotViet (client id, client secret, tên cửa hàng), lưu lại kết nối trong ERP, rồi bật lại lịch: kvsync schedule resume.",
		KindRunningLong:     "Thường không cần làm gì; nếu kéo dài, xem tiến độ bằng kvsync status và nhật ký của kvsync.",
		KindStale:           "Xem kvsync status và kvsync doctor để biết vì sao các lần đồng bộ không thành công.",
		KindWebhooksStopped: "Chạy kvsync doctor (so sánh webhook đã đăng ký với danh sách của KiotViet), rồi đăng ký lại: kvsync webhooks register --credential %s --url https://<máy chủ kvsync>/functions/v1/kiotviet-webhook. Nếu cửa hàng chỉ đang vắng khách, không cần làm gì.",
	},
	types: map[string]string{
		"categories": "nhóm hàng", "products": "hàng hóa", "products_full": "hàng hóa (đầy đủ)",
		"inventory": "tồn kho", "attributes": "thuộc tính", "all": "tất cả", "branches": "chi nhánh",
		"stock": "tồn kho",
	},
	causes: map[cause]string{
		causeOther:         "Đồng bộ không thành công.",
		causeCredentials:   "KiotViet từ chối thông tin kết nối (client id, client secret hoặc tên cửa hàng).",
		causeRateLimit:     "Đã dùng hết giới hạn số lượt gọi API KiotViet trong giờ.",
		causeUnavailable:   "Không kết nối được tới KiotViet, hoặc KiotViet đang lỗi.",
		causeWorkerStopped: "Tiến trình kvsync đang chạy đồng bộ đã dừng giữa chừng (khởi động lại hoặc bị tắt).",
		causeDatabase:      "Không ghi được dữ liệu vào cơ sở dữ liệu.",
	},
	causeTodo: map[cause]string{
		causeOther:         "kvsync sẽ tự thử lại. Nếu vẫn lỗi, xem kvsync status và kvsync doctor.",
		causeCredentials:   "Vào KiotViet (Thiết lập cửa hàng → Thiết lập kết nối API) kiểm tra client id và client secret, rồi lưu lại kết nối trong ERP.",
		causeRateLimit:     "kvsync sẽ tự thử lại khi giới hạn được đặt lại. Nếu lặp lại thường xuyên, hãy giãn lịch đồng bộ.",
		causeUnavailable:   "Thường là tạm thời; kvsync sẽ tự thử lại. Nếu kéo dài, kiểm tra mạng của máy chủ kvsync.",
		causeWorkerStopped: "kvsync sẽ tự chạy lại. Nếu lặp lại, kiểm tra vì sao tiến trình kvsync bị khởi động lại (bộ nhớ, triển khai).",
		causeDatabase:      "Chạy kvsync doctor để kiểm tra cơ sở dữ liệu.",
	},
	minutes: func(d time.Duration) string { return humanDuration(d, "ngày", "giờ", "phút", "giây") },
}

var en = words{
	shop: "Shop", syncType: "Sync type", stream: "Data", problem: "What failed", since: "Since",
	tries: "Failed tries in a row", nextTry: "Next try", lastOK: "Last successful sync",
	todo: "What to do", started: "Started", usual: "Usually takes", never: "never", tz: "Vietnam time",
	lastHook: "Last webhook event", quietFor: "Alert after", disabled: "Disabled by KiotViet",
	subject: map[string]string{
		KindFailing:         "%s sync for %s is failing",
		KindRecovered:       "%s sync for %s works again",
		KindPaused:          "%s sync for %s is paused",
		KindRunningLong:     "%s sync for %s is taking unusually long",
		KindStale:           "%s data of %s is out of date",
		KindWebhooksStopped: "KiotViet stopped sending webhooks for %s",
		webhooksResumed:     "KiotViet sends webhooks for %s again",
		KindTest:            "Alert channel test",
	},
	headline: map[string]string{
		KindRecovered:       "The latest sync succeeded; nothing more to do.",
		"resumed":           "The schedule was resumed; kvsync runs it now and says so if it still fails.",
		KindPaused:          "kvsync stopped running this schedule because KiotViet refused it for good; it will not run again by itself.",
		KindRunningLong:     "The run in progress is taking much longer than usual.",
		KindStale:           "No sync has succeeded for a long time.",
		KindWebhooksStopped: "This shop was receiving KiotViet webhooks and none has arrived for a long time. The schedules still run, so the data stays right, only later.",
		webhooksResumed:     "KiotViet webhooks arrive again; changes in KiotViet reach the ERP within seconds again.",
		KindTest:            "This is a test message from kvsync (kvsync alerts test). If you can read it, this channel works.",
	},
	todoFor: map[string]string{
		KindPaused:          "Check the KiotViet connection (client id, client secret, shop name), save it again in the ERP, then resume the schedule: kvsync schedule resume.",
		KindRunningLong:     "Usually nothing; if it goes on, check progress with kvsync status and kvsync's logs.",
		KindStale:           "See kvsync status and kvsync doctor for why the syncs are not succeeding.",
		KindWebhooksStopped: "Run kvsync doctor (it compares the registered webhooks with KiotViet's list), then register again: kvsync webhooks register --credential %s --url https://<kvsync host>/functions/v1/kiotviet-webhook. If the shop is only quiet, nothing.",
	},
	types: map[string]string{
		"categories": "categories", "products": "products", "products_full": "products (full)",
		"inventory": "stock", "attributes": "attributes", "all": "everything", "branches": "branches",
		"stock": "stock",
	},
	causes: map[cause]string{
		causeOther:         "The sync did not succeed.",
		causeCredentials:   "KiotViet refused the connection details (client id, client secret or shop name).",
		causeRateLimit:     "The hourly KiotViet API call limit was used up.",
		causeUnavailable:   "KiotViet could not be reached, or it answered with an error.",
		causeWorkerStopped: "The kvsync process running the sync stopped half-way (a restart or a crash).",
		causeDatabase:      "The data could not be written to the database.",
	},
	causeTodo: map[cause]string{
		causeOther:         "kvsync retries by itself. If it keeps failing, see kvsync status and kvsync doctor.",
		causeCredentials:   "In KiotViet (Store settings → API connection) check the client id and client secret, then save the connection again in the ERP.",
		causeRateLimit:     "kvsync retries once the limit resets. If it happens often, space the schedules out.",
		causeUnavailable:   "Usually temporary; kvsync retries by itself. If it lasts, check the kvsync server's network.",
		causeWorkerStopped: "kvsync runs it again by itself. If it repeats, find out why kvsync restarts (memory, deploys).",
		causeDatabase:      "Run kvsync doctor to check the database.",
	},
	minutes: func(d time.Duration) string { return humanDuration(d, "d", "h", "min", "s") },
}

// classify turns a run's error text into a cause people understand. The text itself is never shown.
func classify(errText string) cause {
	e := strings.ToLower(errText)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(e, s) {
				return true
			}
		}
		return false
	}
	switch {
	case e == "":
		return causeOther
	case has("unauthorized", "status 401", "status 403", "invalid_client", "tokenexception", "retailer"):
		return causeCredentials
	case has("status 429", "rate limit"):
		return causeRateLimit
	case has("stopped heartbeating", "lease expired", "lease", "shutting down", "handed back"):
		return causeWorkerStopped
	case has("status 5", "timeout", "deadline exceeded", "connection refused", "no such host", "connection reset",
		"eof", "unreachable", "tls"):
		return causeUnavailable
	case has("kiotviet_", "sqlstate", "database", "violates", "deadlock"):
		return causeDatabase
	}
	return causeOther
}

// Render writes the event for people, in lang (vi or en; anything else is vi). It says which shop, which
// sync, what failed in plain words, since when, how many tries and what to do next. It never includes the
// raw error (which may hold a URL, an id or a stack), only what classify made of it.
func Render(ev Event, lang string) Message {
	w := vi
	if lang == "en" {
		w = en
	}
	d := ev.Details
	shop := cmp.Or(d.RetailerName, "?")
	what := d.SyncType
	if ev.Kind == KindStale {
		what = d.Stream
	}
	label := w.types[what]
	if label == "" {
		label = what
	}
	var subject string
	webhooks := ev.Kind == KindWebhooksStopped || (ev.Kind == KindRecovered && d.PreviousState == KindWebhooksStopped)
	switch {
	case ev.Kind == KindTest:
		subject = w.subject[KindTest]
	case webhooks && ev.Kind == KindRecovered:
		subject = fmt.Sprintf(w.subject[webhooksResumed], shop)
	case webhooks:
		subject = fmt.Sprintf(w.subject[KindWebhooksStopped], shop)
	default:
		subject = fmt.Sprintf(cmp.Or(w.subject[ev.Kind], "%s / %s"), label, shop)
		if lang == "en" {
			subject = upperFirst(subject)
		}
	}
	subject = "[kvsync] " + subject

	type line struct{ k, v string }
	var lines []line
	add := func(k, v string) {
		if v != "" {
			lines = append(lines, line{k, v})
		}
	}
	at := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.In(vietnam).Format("2006-01-02 15:04") + " (" + w.tz + ")"
	}
	var headline, todo string
	if ev.Kind != KindTest {
		add(w.shop, shop)
		if ev.Kind == KindStale {
			add(w.stream, label)
		} else if what != "" {
			add(w.syncType, label+" ("+what+")")
		}
	}
	switch ev.Kind {
	case KindFailing:
		c := classify(d.Error)
		headline = w.causes[c]
		add(w.since, at(cmpT(d.FailingSince, d.Since)))
		if d.Failures > 0 {
			add(w.tries, fmt.Sprint(d.Failures))
		}
		add(w.nextTry, at(d.NextRunAt))
		last := at(d.LastSuccessAt)
		if last == "" {
			last = w.never
		}
		add(w.lastOK, last)
		todo = w.causeTodo[c]
	case KindRunningLong:
		headline = w.headline[ev.Kind]
		add(w.started, at(d.StartedAt))
		if d.UsualSeconds > 0 {
			add(w.usual, w.minutes(time.Duration(d.UsualSeconds*float64(time.Second))))
		}
		todo = w.todoFor[ev.Kind]
	case KindStale:
		headline = w.headline[ev.Kind]
		last := at(d.LastSuccessAt)
		if last == "" {
			last = w.never
		}
		add(w.lastOK, last)
		todo = w.todoFor[ev.Kind]
	case KindPaused:
		headline = w.headline[ev.Kind]
		if d.Error != "" {
			add(w.problem, w.causes[classify(d.Error)])
		}
		add(w.since, at(cmpT(d.PausedAt, d.Since)))
		todo = w.todoFor[ev.Kind]
	case KindWebhooksStopped:
		headline = w.headline[ev.Kind]
		last := at(d.LastReceivedAt)
		if last == "" {
			last = w.never
		}
		add(w.lastHook, last)
		if d.StoppedSeconds > 0 {
			add(w.quietFor, w.minutes(time.Duration(d.StoppedSeconds*float64(time.Second))))
		}
		add(w.disabled, strings.Join(d.InactiveTypes, ", "))
		todo = fmt.Sprintf(w.todoFor[ev.Kind], cmp.Or(d.CredentialID, "<credential id>"))
	case KindRecovered:
		headline = w.headline[ev.Kind]
		switch d.PreviousState {
		case "paused":
			headline = w.headline["resumed"]
		case KindWebhooksStopped:
			headline = w.headline[webhooksResumed]
		}
		add(w.since, at(d.Since))
	default:
		headline = w.headline[ev.Kind]
		add(w.since, at(d.Since))
	}

	var text, htm strings.Builder
	text.WriteString(headline + "\n\n")
	htm.WriteString("<p>" + html.EscapeString(headline) + "</p>\n<table>\n")
	for _, l := range lines {
		fmt.Fprintf(&text, "%s: %s\n", l.k, l.v)
		fmt.Fprintf(&htm, "<tr><th align=\"left\">%s</th><td>%s</td></tr>\n", html.EscapeString(l.k), html.EscapeString(l.v))
	}
	htm.WriteString("</table>\n")
	if todo != "" {
		fmt.Fprintf(&text, "\n%s: %s\n", w.todo, todo)
		fmt.Fprintf(&htm, "<p><b>%s:</b> %s</p>\n", html.EscapeString(w.todo), html.EscapeString(todo))
	}
	return Message{Subject: subject, Text: strings.TrimRight(text.String(), "\n") + "\n", HTML: htm.String()}
}

func cmpT(a, b *time.Time) *time.Time {
	if a != nil {
		return a
	}
	return b
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func humanDuration(d time.Duration, day, hour, minute, second string) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%d %s %d %s", int(d/(24*time.Hour)), day, int(d%(24*time.Hour)/time.Hour), hour)
	case d >= time.Hour:
		return fmt.Sprintf("%d %s %d %s", int(d/time.Hour), hour, int(d%time.Hour/time.Minute), minute)
	case d >= time.Minute:
		return fmt.Sprintf("%d %s", int(d.Round(time.Minute)/time.Minute), minute)
	}
	return fmt.Sprintf("%d %s", int(d.Round(time.Second)/time.Second), second)
}

// decodeDetails is the JSON of kiotviet_alert_events.details.
func decodeDetails(raw json.RawMessage) Details {
	var d Details
	_ = json.Unmarshal(raw, &d)
	return d
}
