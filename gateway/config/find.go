package config

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Find returns the line and column (1-based) of the value at path in a
// config file's text, path as in Error.Path: keys joined by dots, list
// items by index ("uplink.password_file", "devices[2].password_file",
// "lines[0].port"). It lets problems found after Load (missing files,
// busy ports) name file:line:col. ok is false when the text does not
// parse or has no such key.
func Find(data []byte, path string) (line, col int, ok bool) {
	steps, err := splitPath(path)
	if err != nil {
		return 0, 0, false
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil || len(doc.Content) == 0 {
		return 0, 0, false
	}
	n := doc.Content[0]
	for _, s := range steps {
		n = step(n, s)
		if n == nil {
			return 0, 0, false
		}
	}
	return n.Line, n.Column, true
}

// pathStep is a key, or an index when key is empty.
type pathStep struct {
	key   string
	index int
}

func splitPath(path string) ([]pathStep, error) {
	if path == "" {
		return nil, fmt.Errorf("config: empty path")
	}
	var out []pathStep
	for _, part := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key == "" && rest == "" {
			return nil, fmt.Errorf("config: path %q has an empty key", path)
		}
		if key != "" {
			out = append(out, pathStep{key: key})
		}
		for rest != "" {
			num, after, found := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if !found || err != nil || i < 0 {
				return nil, fmt.Errorf("config: path %q: bad index %q", path, num)
			}
			out = append(out, pathStep{index: i})
			if after == "" {
				break
			}
			if after[0] != '[' {
				return nil, fmt.Errorf("config: path %q: %q after an index", path, after)
			}
			rest = after[1:]
		}
	}
	return out, nil
}

func step(n *yaml.Node, s pathStep) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case s.key != "" && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == s.key {
				return n.Content[i+1]
			}
		}
	case s.key == "" && n.Kind == yaml.SequenceNode && s.index < len(n.Content):
		return n.Content[s.index]
	}
	return nil
}
