package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/config"
)

// locatedError is err printed one problem a line, each *gateway.SetupError
// at the file:line:col of its config key.
type locatedError struct {
	text string
	err  error
}

func (e *locatedError) Error() string { return e.text }
func (e *locatedError) Unwrap() error { return e.err }

// located turns the problems in err (joined) into lines naming the config
// file, and the line and column of the key where the file has it.
func located(file string, err error) error {
	data, _ := os.ReadFile(file) // already read by config.Load; a failure only loses positions
	var lines []string
	for _, e := range flatten(err) {
		var se *gateway.SetupError
		if !errors.As(e, &se) {
			lines = append(lines, file+": "+e.Error())
			continue
		}
		if l, c, ok := config.Find(data, se.Path); ok {
			lines = append(lines, fmt.Sprintf("%s:%d:%d: %s", file, l, c, se))
		} else {
			lines = append(lines, fmt.Sprintf("%s: %s", file, se))
		}
	}
	return &locatedError{text: strings.Join(lines, "\n"), err: err}
}

// flatten undoes errors.Join (nested joins too).
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
