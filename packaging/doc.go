// Package packaging holds the Debian packaging of townlink — the nfpm
// template (nfpm.yaml), the hardened systemd unit (townlink.service), the
// default configuration (townlink.yaml, a conffile) and the maintainer
// scripts — and the tests that install it for real: `make deb` builds the
// packages, deb_test.go installs, upgrades, removes and purges one with
// dpkg on this machine, and cross_test.go runs the arm64 and armv7 builds
// under qemu-user.
package packaging
