//go:build race

package fieldbroker_test

// raceEnabled: the race detector multiplies resident memory (shadow memory).
const raceEnabled = true
