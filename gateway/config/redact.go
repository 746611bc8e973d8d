package config

import "slices"

// RedactedMark replaces a secret (or a secret file's path) in Redacted.
const RedactedMark = "[redacted]"

func redact(s string) string {
	if s == "" {
		return ""
	}
	return RedactedMark
}

// Redacted returns a deep copy with secrets and secret paths replaced by
// RedactedMark (left empty when unset), for the config command and logs:
// uplink.key, uplink.password_file, field_broker.key, web.password_file and every device's
// password_file. Certificates, CA files and usernames are not secret.
func (c *Config) Redacted() *Config {
	r := *c
	r.Uplink.Brokers = slices.Clone(c.Uplink.Brokers)
	r.Uplink.Key = redact(c.Uplink.Key)
	r.Uplink.PasswordFile = redact(c.Uplink.PasswordFile)
	r.FieldBroker.Key = redact(c.FieldBroker.Key)
	r.Web.PasswordFile = redact(c.Web.PasswordFile)
	r.Lines = slices.Clone(c.Lines)
	r.Devices = slices.Clone(c.Devices)
	for i := range r.Devices {
		dv := &r.Devices[i]
		dv.Points = slices.Clone(dv.Points)
		dv.Outputs = slices.Clone(dv.Outputs)
		dv.Read = slices.Clone(dv.Read)
		dv.PasswordFile = redact(dv.PasswordFile)
	}
	return &r
}
