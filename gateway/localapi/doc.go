// Package localapi is the running gateway's local control API: what
// `townlink status`, `townlink read`, `townlink scan` and the local web
// page ask of it, served as HTTP with JSON on a Unix socket (gateway.socket,
// default data_dir/townlink.sock, mode 0660) that only local users with
// access to the socket reach.
//
//	GET  /status              the gateway now (Status)
//	POST /read?device=ID      poll one device now (ReadResult)
//	POST /time-sync           broadcast the time to the DL/T 645 meters (TimeSyncResult)
//	POST /scan?line=NAME[&baud=auto|RATE][&protocol=dlt645,cjt188,modbus]
//	                          scan a line between its polls: a stream of
//	                          JSON lines, {"progress":…} then {"found":[…]}
//	                          or {"error":"…"} (ScanEvent)
//
// Errors are a JSON object {"error": "…"} with status 400 (a bad
// request), 404 (no such device or line), 409 (refused, e.g. the clock is
// not synced), 501 (not in this build) or 502 (the device did not answer).
//
// Service builds the answers from small sources (the status snapshot, the
// queues, the lines' figures, the recent values, the alarms) and runs the
// actions on small interfaces (a device's Read, a line's Do); it holds no
// pointer to the gateway. Client is the other end, for the command line.
package localapi
