// Package certs loads and watches the gateway's TLS files and secrets.
//
//   - Client is the uplink's mutual-TLS client: its CA and its client
//     certificate are re-read when their files change, so a renewed
//     certificate or CA is used at the next connection without a restart
//     (mqttpub.Options.GetTLS calls Client.Config at every dial).
//   - Monitor tells how many days each certificate (the uplink client
//     certificate, the CA, the field broker's certificate) has left, for
//     the status message and the metrics, and logs a warning from
//     WarnDays (30) days before expiry. A certificate that is "not yet
//     valid" only because the gateway's clock is unsynchronised is
//     reported as ClockUnsynced, not as a broken certificate.
//   - CheckSecret refuses a password or key file that group or others may
//     read, naming the exact `chmod 600 PATH` to run. The gateway and
//     `townlink check` call it for every secret file.
package certs
