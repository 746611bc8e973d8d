//go:build !race

package fieldbroker_test

const raceEnabled = false
