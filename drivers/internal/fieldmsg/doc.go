// Package fieldmsg parses the JSON-or-CBOR messages that MQTT field
// devices (drivers/recorder, drivers/kiosk) publish into a tree of Nodes,
// numbers kept as their literal text so decimals stay exact, and reads
// typed fields from it with specific errors. It owns the rules every field
// driver shares: which device times are plausible and when a device's
// clock counts as skewed (Plausible, Skew), the only structural bound on a
// message (MaxDepth; there is no size limit), and the spellings read as
// one (hex in any case, enumerations in any ASCII case, identifiers with
// '-' and '_').
//
// Errors keep each driver's own identity: a driver instantiates
// FieldError and Fields with its own Driver type, which gives the error
// texts the driver's prefix ("kiosk: hall-kiosk-1 service.rated:
// dimensions.attitude = 0: out of range [1, 5]") and its own sentinels,
// and keeps kiosk.FieldError and recorder.FieldError distinct types for
// errors.As.
package fieldmsg
