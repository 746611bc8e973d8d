// Package recorder decodes the messages of enforcement recorders
// (执法记录仪, 单警执法视音频记录仪) that publish to the gateway's embedded
// MQTT broker on field/{device-id}/{event}. It is pure: bytes in, readings
// or a specific error out. The gateway derives the device from the MQTT
// credentials, checks the topic prefix and calls Decode synchronously
// before it acknowledges the message.
//
// # Messages
//
// The model is the project's gw.v1 (protocols.md §5.2), built from what
// GA/T 947-2015 (ZFY_INFO: serial, 警号 userNo, unit), GB/T 28181
// (DeviceStatus, Alarm priority 1–4, MobilePosition) and JT/T 808 carry.
// A payload is either
//
//   - the envelope {schema, msg_id, ts, seq, device_id, device_type, event,
//     payload{…}}: a map with a "payload" object. schema, if present, must
//     be "gw.v1" and device_type "bodycam" (both in any ASCII case); event,
//     if present, must equal the topic's event; device_id, if present,
//     must be the configured device, exactly (ErrWrongDevice: a device may
//     not speak for another); or
//   - the bare payload object (the payload fields at the top level, plus
//     optionally ts and device_id, checked the same way).
//
// Both may be JSON (first non-blank byte '{') or CBOR (first byte a map
// header 0xA0–0xBF) with the same keys. Unknown keys are ignored (vendors
// add fields); duplicate keys (JSON and CBOR), trailing bytes, nesting
// beyond 16 levels, CBOR byte strings and CBOR tags other than 4
// (decimal fraction), 2/3 (bignum) and 0/1 (time) are refused.
//
// There is no size limit here: the field broker's max_payload (256 KiB by
// default) is the one limit, and it refuses a larger message before
// Decode sees it. No field the driver reads is long (texts are at most
// 256 bytes), so a large valid message is one with large vendor extras,
// such as an evidence.file carrying the recording's GPS track
// (testdata/valid/evidence_100k.json); its size costs decoding time in
// proportion, nothing more.
//
// Numbers are exact: a JSON number keeps its literal ("31.2987654" is
// drivers.Dec(312987654, -7), never a float64); a CBOR float is read as
// the shortest decimal that round-trips, a CBOR tag 4 as it stands.
//
// # Time
//
// Clock skew is never a reason to refuse a message. A device time is
// plausible from 2001-01-01 up to 2100-01-01 UTC, whatever the gateway's
// clock says (the gateway may have none yet: a box without RTC battery
// reads 1970 until NTP). Only an implausible or unparsable time is an
// error, and only where the time is a required field (start_at, end_at).
//
// Reading.Time is the message's ts (ms since the epoch or RFC 3339 with a
// zone, device clock) with DeviceTime set when it is plausible; otherwise
// Time is zero and the gateway stamps the reading. When the gateway's own
// clock is plausible and the device's time differs from it by more than
// an hour either way, the reading keeps the device's time and is flagged
// drivers.QualityClockSkew with the point clock_offset_ms (device minus
// gateway, Int). The offset is the ts's (an implausible ts, a device clock
// reset to 1970, counts too); a start_at or end_at further ahead of the
// gateway than that (a recording cannot end in the future) gives it
// instead, so a bare evidence.file without ts is judged as well. A message
// held back by the device for more than an hour is flagged the same way:
// the offset says by how much. A last will (device.status with
// online:false) always gets the gateway's stamp and is not judged: it is
// composed when the device connects, so its ts is stale.
//
// # Points
//
//	device.status         telemetry  battery_pct (0–100), storage_free_mb, recording (required);
//	                                 charging, network, signal_dbm (−150..0), temperature_c,
//	                                 officer (officer_id), serial
//	device.status online:false  event  event=offline
//	device.position       telemetry  lat, lon, datum (required; WGS84, GCJ02 or BD09, any case,
//	                                 with or without a hyphen: "wgs-84" reads WGS84),
//	                                 alt_m, speed_kmh, heading_deg [0, 360), fix, sats
//	recording.started     event      event=record_start, file_id (required), trigger, lat, lon, datum
//	recording.stopped     event      event=record_stop, likewise
//	alarm.sos             alarm      event=sos, lat, lon, datum, active (default true),
//	                                 priority (1–4, default 1)
//	alarm.device          alarm      event=device_alarm, code (required), active (default true), priority
//	evidence.file         evidence   file_id, sha256 (64 hex), size_bytes (> 0),
//	                                 officer (officer_id), started (start_at), ended (end_at)
//	                                 required; duration_s (≥ 0), serial, important, media_type,
//	                                 file_name, sm3 (64 hex), md5 (32 hex)
//	command.ack           event      event=command_ack, cmd_id, result (ok|error) required; detail
//
// Every reading also carries msg_id when the message has one, so the
// platform can recognise a QoS 1 redelivery.
//
// Spellings that mean the same are accepted: hex digests (sha256, sm3,
// md5) in any case, forwarded in lower case; enumerations (media_type,
// trigger, fix, code, result) in any ASCII case, forwarded in the spelling
// above; numbers with trailing zeros beyond 18
// digits ("36.500000000000000000"). officer: GA/T 947 ZFY_INFO has a
// 6-character 警号; units differ and prefix it ("SZ-100234"), so 1 to 32
// ASCII letters, digits, '-' and '_', starting with a letter or digit, are
// accepted and kept as sent. start_at and end_at are ms since the epoch or
// RFC 3339 with a zone, plausible (see Time), and end_at ≥ start_at; they
// become Int points (ms) started and ended. lat/lon come in pairs; in
// device.position they are required with datum.
//
// An SOS is never refused for a bad optional field (a broken GPS must not
// swallow a call for help): a bad position, active or priority is left
// out, named in the "invalid" point, and the reading carries
// QualityInvalidFields (drivers.QualityInvalidFields). Everything else is
// validated strictly, and every rejection is a *FieldError naming the
// field, the value and the reason, wrapping ErrMalformed, ErrSchema,
// ErrUnknownEvent or ErrWrongDevice: each means the message itself is
// wrong, so the gateway keeps it as a rejected record (see the errors).
package recorder
