// Package web is the gateway's local page: devices with their last values,
// state and a chart of the last hour per point, line utilisation and
// errors, the uplink's backlog and oldest unsent age, field devices online,
// active alarms and certificates, updated live with Server-Sent Events. It
// is plain HTML, CSS and JavaScript embedded in the binary (no CDN: the
// township network often has no internet) and fits a phone's screen.
//
// Reading is open to whoever reaches the address (web.listen, loopback by
// default in the packaged config). Actions (read now, time sync, scan)
// need a login with the password in web.password_file (mode 0600; the
// file is re-read at every login, so a changed password needs no restart):
// a random session token in an HttpOnly, SameSite=Strict cookie, a
// growing back-off after each wrong password, and every POST refused
// unless it comes from the page's own origin (http.CrossOriginProtection).
//
//	GET  /                    the page
//	GET  /api/status          localapi.Status as JSON
//	GET  /api/events          the same, pushed every Interval (text/event-stream, event "status")
//	GET  /api/history?device= each numeric point's samples of the last hour
//	GET  /api/session         {"logged_in":…, "login_enabled":…}
//	POST /api/login           form field password
//	POST /api/logout
//	POST /api/read?device=ID  (logged in) localapi.ReadResult
//	POST /api/time-sync       (logged in) localapi.TimeSyncResult
//	POST /api/scan?line=NAME  (logged in) JSON lines of progress, then the devices found
//	                          (localapi.StreamScan, as on the control socket)
package web
