package testkit

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// StartPython runs a Python peer script under Debian's python3 after
// checking that it imports modules, and returns what the script printed
// after "READY " on its stdout (a device path or a TCP port). The script
// must exit when its stdin closes; it is stopped and waited for when the
// test ends. A peer that cannot start fails the test with what to install.
func StartPython(t testing.TB, modules []string, script string, args ...string) string {
	t.Helper()
	RequirePython(t, modules...)
	cmd := exec.Command(Python, append([]string{script}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s %s: %v; %s", Python, script, err, Hint("", "bin", "python3"))
	}
	ready := make(chan string, 1)
	done := make(chan struct{})
	go func() { // owned by this test: it ends when the process closes stdout
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- rest
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", script, stderr.String())
		}
	})
	select {
	case s := <-ready:
		return s
	case <-done:
		t.Fatalf("%s exited before it was ready: %s\n%s", script, Hint(stderr.String(), "py", firstOr(modules, "python3")), stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready after 30 s:\n%s", script, stderr.String())
	}
	return ""
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
