// Package kiosk decodes the messages of a service hall's queue system
// (排队叫号机) and its evaluation pads (政务服务"好差评"), published to the
// gateway's embedded MQTT broker on field/{device-id}/{event}, and derives
// per-service metrics from them. Decode is pure apart from the metrics
// state; the gateway calls it synchronously before it acknowledges the
// message. Run (drivers.Source) emits the derived telemetry every Window
// and wait alarms.
//
// # Messages
//
// The model is the project's gw.v1 (protocols.md §6), from what queue
// systems carry (BusinessType, window, call and wait times) and the
// national 好差评 scheme (five levels, 5 非常满意 … 1 非常不满意; hall
// dimensions 整体满意度, 服务效率, 服务水平, 服务态度; a bad rating needs
// a reason). The envelope and the bare payload are both accepted, as JSON
// or CBOR, exactly as in drivers/recorder (device_type, if present, must
// be "queue"), with the same time rules: clock skew is never a reason to
// refuse a message; a device time is plausible from 2001 up to 2100
// whatever the gateway's clock says; a reading whose time (ts, else the
// event's own time) differs from a plausible gateway clock by more than an
// hour is kept with the device's time, flagged drivers.QualityClockSkew
// and given clock_offset_ms (device minus gateway). There is no size
// limit: the field broker's max_payload is the one limit. Enumerations
// (state, channel, result, printer_paper, priority) are read in any ASCII
// case and forwarded in the spelling below.
//
//	ticket.issued       event=ticket_issued, ticket (ticket_no), service (business_type, else
//	                    queue_id; required), channel, priority, waiting_ahead
//	ticket.called       event=ticket_called, ticket, service, window (window_no), staff (staff_id),
//	                    call_count, wait_s = called_at − issued_at on the first call (a negative
//	                    one, from clocks that disagree, is left out: see below)
//	ticket.transferred  event=ticket_transferred, ticket, service (to_queue, required), window
//	                    (from_window), reason; the ticket waits again in its new queue
//	ticket.skipped      event=ticket_skipped, ticket, window, reason; the ticket stops waiting
//	service.started     event=service_started, ticket, service, window, staff, matter_code, case_no
//	service.finished    event=service_done, likewise plus result and handle_s (service_s, else
//	                    finished_at − started_at from the message or the service.started seen)
//	service.rated       event=rated, ticket, service, rating (1–5; required unless timeout:true),
//	                    rating_overall, rating_efficiency, rating_level, rating_attitude
//	                    (dimensions{…}), reasons (codes joined by ','; required when rating ≤ 2),
//	                    timeout, window, staff, case_no, matter_code
//	window.status       event=window_status, window, state (open|paused|closed), staff; optional
//	                    services[] or business_type/queue_id say what the window serves
//	device.status       telemetry online, printer_paper, screen, firmware; online:false (the last
//	                    will) is the event offline, stamped by the gateway
//
// Times (issued_at, called_at, started_at, finished_at, rated_at,
// transferred_at) are ms since the epoch or RFC 3339; a missing one falls
// back to the message ts, then the gateway's clock. When that mix of clocks
// makes a wait or a handling time negative, the event is kept all the
// same: wait_s or handle_s is left out, named in the point "invalid", and
// the reading is flagged drivers.QualityInvalidFields. Durations are exact
// decimals in seconds with ms resolution (drivers.Dec(ms, -3)). Free text
// that may hold personal data (comment, names, phone numbers) is not
// forwarded; citizen_ref is checked but not forwarded either: a SHA-256 of
// an 11-digit phone number is easily reversed.
//
// # Privacy
//
// A message is refused with ErrPersonalData, naming the field but never
// echoing the value, when any key anywhere is a raw ID field (id_card,
// id_no, idcard, sfz, sfzh, citizen_id, 身份证号 and spellings; compared
// case-blind without '_', '-', spaces), when any string or number
// anywhere, or any key, holds a PRC resident ID (see ContainsResidentID:
// an 18-digit number with a valid GB 11643 check digit and birth date, or
// a 15-digit old number with a valid birth date), or when citizen_ref is
// not 32–128 hex digits. An 18-digit number whose check digit is wrong is
// not an ID and passes: the check is what tells an ID from a long case
// number.
//
// # Metrics
//
// Every Window, one telemetry reading per service (see Metrics): waiting,
// wait_p50_s, wait_p90_s, handled_per_h, rating_avg, windows_open.
// Samples are placed in windows by the gateway's clock when the message
// arrived (device clocks can be off), while waits and handling times are
// differences of the device's own times (a clock offset cancels out). A
// long_wait event (active=true, ticket, service, wait_s, over) is emitted
// once per ticket that has waited longer than WaitAlarm by the gateway's
// clock without being called, and one with active=false (over=0) when no
// such ticket waits any more; the gateway's rules engine turns them into
// one alarm per kiosk (default rule kiosk-wait).
//
// State is in memory only. A gateway restart loses the tickets waiting,
// the current window's samples and which tickets already alarmed: metrics
// restart from empty: tickets issued before the restart are not counted
// as waiting, never raise a wait alarm, and their calls carry no wait_s. Every raw event is on the uplink events stream, so the
// platform can recompute everything.
package kiosk
